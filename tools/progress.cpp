#include "tools/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace ladon::tool {

std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    const auto s = int64_t(seconds + 0.5);
    if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
    if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
    return fmt::format("{}s", s);
}

Progress::Progress(std::vector<std::string> tasks, int64_t batch, int64_t log_every)
    : tasks_(std::move(tasks)), running_(tasks_.size(), -1.0), batch_(batch), log_every_(log_every),
      terminal_(isatty(fileno(stdout)) != 0) {}

void Progress::step(const StepReport& report) {
    for (std::size_t h = 0; h < tasks_.size() && h < report.losses.size(); ++h) {
        if (!std::isfinite(report.losses[h])) continue;
        running_[h] = running_[h] < 0 ? report.losses[h] : 0.95 * running_[h] + 0.05 * report.losses[h];
    }
    const auto now = std::chrono::steady_clock::now();
    const bool last = report.step == report.total_steps;
    if (terminal_) {
        // Redraw at most 10 times a second: printing is not free.
        if (!last && now - last_draw_ < std::chrono::milliseconds(100)) return;
    } else if (report.step % log_every_ != 0 && !last) {
        return;
    }
    last_draw_ = now;
    std::string line = fmt::format("epoch {} step {}/{}", report.epoch, report.step, report.total_steps);
    for (std::size_t h = 0; h < tasks_.size(); ++h) line += fmt::format("  {} {:.4f}", tasks_[h], running_[h]);
    const double eta = report.samples_per_second > 0
                           ? double(report.total_steps - report.step) * double(batch_) / report.samples_per_second
                           : -1.0;
    line += fmt::format("  lr {:.3g}  {:.0f} samples/s  ETA {}", report.learning_rate, report.samples_per_second,
                        format_duration(eta));
    if (report.skipped_steps > 0) line += fmt::format("  skipped {}", report.skipped_steps);
    if (terminal_) {
        std::printf("\r\033[K%s", line.c_str());
        line_open_ = true;
    } else {
        std::printf("%s\n", line.c_str());
    }
    std::fflush(stdout);
}

void Progress::finish_line() {
    if (line_open_) std::printf("\n");
    line_open_ = false;
}

void Progress::epoch(const EpochReport& report, int64_t epochs) {
    finish_line();
    std::printf("epoch %lld/%lld  step %lld  %.1f s  %.0f samples/s\n", static_cast<long long>(report.epoch),
                static_cast<long long>(epochs), static_cast<long long>(report.steps), report.seconds,
                report.seconds > 0 ? double(report.samples) / report.seconds : 0.0);
    auto print = [](const char* split, const std::vector<TaskMetric>& metrics) {
        if (metrics.empty()) return;
        std::string line = fmt::format("  {:<5}", split);
        for (const auto& m : metrics) {
            line += fmt::format("  {} loss {:.4f} {} {:.4f}", m.task, m.loss, m.metric, m.value);
            for (const auto& [name, value] : m.extra) line += fmt::format(" {} {:.4f}", name, value);
        }
        std::puts(line.c_str());
    };
    print("train", report.train);
    print("test", report.test);
    std::fflush(stdout);
}

}  // namespace ladon::tool
