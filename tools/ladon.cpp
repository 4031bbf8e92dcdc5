// The ladon command. For now: `ladon train`. Argument parsing and printing
// only; everything else goes through the library's public API.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <exception>

#include "ladon/config.hpp"
#include "ladon/error.hpp"
#include "ladon/training.hpp"

namespace {

void print_metrics(const char* split, const std::vector<ladon::TaskMetric>& metrics) {
    std::string line = fmt::format("  {:<5}", split);
    for (const auto& m : metrics)
        line += fmt::format("  {} loss {:.4f} {} {:.4f}", m.task, m.loss, m.metric, m.value);
    std::puts(line.c_str());
}

int train(const std::string& config_path, int64_t epochs, int64_t max_steps, int threads) {
    ladon::RunConfig config = config_path.empty() ? ladon::default_run_config() : ladon::load_run_config(config_path);
    if (epochs > 0) config.training.epochs = epochs;
    if (max_steps > 0) config.training.max_steps = max_steps;
    if (threads > 0) config.training.threads = threads;
    const auto train_data = ladon::make_train_dataset(config.data);
    const auto test_data = ladon::make_test_dataset(config.data);
    ladon::Trainer trainer(config.model, config.training);
    const auto plan = trainer.memory_plan();
    std::printf("ladon: %s, %lld train / %lld test samples, %lld parameters, batch %lld, cpu backend\n",
                train_data->name().c_str(), static_cast<long long>(train_data->size()),
                static_cast<long long>(test_data->size()), static_cast<long long>(trainer.parameter_count()),
                static_cast<long long>(config.training.batch_size));
    std::printf("memory: parameters %.2f MiB, gradients %.2f MiB, optimizer %.2f MiB, activations %.2f MiB, "
                "workspace %.2f MiB\n",
                plan.parameters / 1048576.0, plan.gradients / 1048576.0, plan.optimizer_state / 1048576.0,
                plan.activations / 1048576.0, plan.workspace / 1048576.0);
    std::fflush(stdout);
    trainer.fit(*train_data, test_data.get(), [&](const ladon::EpochReport& report) {
        std::printf("epoch %lld  step %lld  %.1f s  %.0f samples/s\n", static_cast<long long>(report.epoch),
                    static_cast<long long>(report.steps), report.seconds,
                    report.seconds > 0 ? double(report.samples) / report.seconds : 0.0);
        print_metrics("train", report.train);
        print_metrics("test", report.test);
        std::fflush(stdout);
    });
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ladon: multi-task convolutional network training"};
    app.set_version_flag("--version", "ladon 0.1.0");
    app.require_subcommand(1);
    std::string config_path;
    int64_t epochs = 0, max_steps = 0;
    int threads = 0;
    CLI::App* train_command = app.add_subcommand("train", "Train a model (default: the embedded synthetic model)");
    train_command->add_option("-c,--config", config_path, "Run config (TOML); none: the embedded synthetic model");
    train_command->add_option("--epochs", epochs, "Override training.epochs")->check(CLI::PositiveNumber);
    train_command->add_option("--max-steps", max_steps, "Stop after this many steps")->check(CLI::PositiveNumber);
    train_command->add_option("--threads", threads, "CPU threads (default: all cores)")->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);
    try {
        if (train_command->parsed()) return train(config_path, epochs, max_steps, threads);
    } catch (const ladon::Error& e) {
        std::fprintf(stderr, "ladon: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ladon: internal error: %s\n", e.what());
        return 2;
    }
    return 0;
}
