#pragma once
// The training progress display: on a terminal one line redrawn in place,
// otherwise plain lines every `log_every` steps.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "ladon/training.hpp"

namespace ladon::tool {

class Progress {
public:
    Progress(std::vector<std::string> tasks, int64_t batch, int64_t log_every);
    void step(const StepReport& report);
    void epoch(const EpochReport& report, int64_t epochs);
    // Ends a redrawn line before other output.
    void finish_line();

private:
    std::vector<std::string> tasks_;
    std::vector<double> running_;  // exponential moving average of each task's loss
    int64_t batch_;
    int64_t log_every_;
    bool terminal_;
    bool line_open_ = false;
    std::chrono::steady_clock::time_point last_draw_{};
};

std::string format_duration(double seconds);

}  // namespace ladon::tool
