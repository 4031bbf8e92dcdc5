#pragma once
// Run configs as TOML: the model (trunk and heads), training options,
// optimizer, schedule and data. Unknown keys, wrong types and impossible
// values are errors that name the file, the line and the key.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ladon/dataset.hpp"
#include "ladon/model.hpp"
#include "ladon/training.hpp"

namespace ladon {

// One task of an "npy" dataset: labels (and an optional 0/1 mask of present
// labels) for the training and, optionally, the test inputs.
struct NpyTaskConfig {
    std::string name;
    std::string kind = "classes";  // "classes", "binary" or "regression"
    int64_t classes = 0;           // classes: how many
    std::string labels, mask, test_labels, test_mask;
};

struct DataConfig {
    std::string dataset = "synthetic";  // "synthetic", "fashion-mtl" or "npy"
    std::string directory = "/usr/share/datasets/fashion-mnist";  // fashion-mtl
    uint64_t seed = 1;
    int64_t train_size = 0;  // synthetic: samples (0: 4096); fashion-mtl: limit (0: all 60 000)
    int64_t test_size = 0;   // synthetic: samples (0: 1024); fashion-mtl: limit (0: all 10 000)
    int64_t canvas = 24;     // synthetic
    std::string inputs, test_inputs;  // npy: [N, C, H, W] uint8 or float32; test_inputs optional
    std::vector<NpyTaskConfig> tasks; // npy
};

// Where a run writes, and how often.
struct RunOptions {
    std::string output = "runs/latest";  // run folder: config, metrics.jsonl, checkpoints
    int64_t checkpoint_every = 0;        // steps between checkpoints (0: at each epoch's end)
    int64_t keep_checkpoints = 3;        // the newest K are kept
    int64_t log_every = 50;              // steps between metrics.jsonl training records
    std::string device = "auto";         // "auto", "cpu", "cuda" or "cuda:N"
};

struct RunConfig {
    ModelSpec model;
    TrainerOptions training;
    DataConfig data;
    RunOptions run;
};

struct Device {
    std::optional<Backend> backend;  // empty: "auto", the CUDA device if there is one, else the CPU
    int index = 0;                   // CUDA device
};
// Parses "auto", "cpu", "cuda" or "cuda:N"; throws ladon::Error otherwise.
Device parse_device(const std::string& text);

// Parses TOML text; `source` names it in errors (usually the file path).
// `overrides` are "key.path=value" assignments applied before validation.
RunConfig parse_run_config(std::string_view text, const std::string& source,
                           const std::vector<std::string>& overrides = {});
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides = {});
// The config as TOML, every value resolved (defaults written out): parsing it
// gives the same config back.
std::string to_toml(const RunConfig& config);
// `config` with "key.path=value" overrides applied and validated as in a file
// (through its TOML form); `source` names it in errors.
RunConfig with_overrides(const RunConfig& config, const std::vector<std::string>& overrides,
                         const std::string& source);
// Only a model description: a file whose top level is the [model] table's
// contents (input, trunk, heads).
ModelSpec load_model_file(const std::string& path);
// The embedded default: a small conv net on the synthetic shapes dataset.
RunConfig default_run_config();

std::unique_ptr<Dataset> make_train_dataset(const DataConfig& data);
// Null for an "npy" dataset without test_inputs.
std::unique_ptr<Dataset> make_test_dataset(const DataConfig& data);

}  // namespace ladon
