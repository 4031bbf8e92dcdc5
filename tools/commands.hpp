#pragma once
// The ladon command's subcommands. Each returns the process exit code and
// throws ladon::Error for anything the user can fix.
#include <cstdint>
#include <string>
#include <vector>

#include "ladon/training.hpp"

namespace ladon::tool {

struct TrainArguments {
    std::string config;               // empty: the embedded synthetic model
    std::vector<std::string> overrides;  // --set key=value
    std::string device;               // empty: the config's
    std::string resume;               // empty, a run folder, or "latest"
    int64_t epochs = 0, max_steps = 0;
    int threads = 0;
};
int train(const TrainArguments& arguments);

struct EvalArguments {
    std::string checkpoint;
    std::string split = "test";  // test or train
    std::vector<std::string> overrides;  // --set data.*=...
};
int eval(const EvalArguments& arguments);

struct PredictArguments {
    std::string checkpoint, input, output;
};
int predict(const PredictArguments& arguments);

struct TimeArguments {
    std::string config;
    std::vector<std::string> overrides;
    std::string device;
    int iterations = 10;
};
int time(const TimeArguments& arguments);

int info();

// Shared by the commands.
// Sets options.backend from "auto|cpu|cuda[:N]" and prints what was chosen;
// throws for cuda where there is none.
void select_device(const std::string& device_text, TrainerOptions& options);

}  // namespace ladon::tool
