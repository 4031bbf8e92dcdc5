#pragma once
// Run configs as TOML: the model (trunk and heads), training options,
// optimizer, schedule and data. Unknown keys, wrong types and impossible
// values are errors that name the file, the line and the key.
#include <memory>
#include <string>
#include <string_view>

#include "ladon/dataset.hpp"
#include "ladon/model.hpp"
#include "ladon/training.hpp"

namespace ladon {

struct DataConfig {
    std::string dataset = "synthetic";  // "synthetic" or "fashion-mtl"
    std::string directory = "/usr/share/datasets/fashion-mnist";  // fashion-mtl
    uint64_t seed = 1;
    int64_t train_size = 0;  // synthetic: samples (0: 4096); fashion-mtl: limit (0: all 60 000)
    int64_t test_size = 0;   // synthetic: samples (0: 1024); fashion-mtl: limit (0: all 10 000)
    int64_t canvas = 24;     // synthetic
};

struct RunConfig {
    ModelSpec model;
    TrainerOptions training;
    DataConfig data;
};

// Parses TOML text; `source` names it in errors (usually the file path).
RunConfig parse_run_config(std::string_view text, const std::string& source);
RunConfig load_run_config(const std::string& path);
// Only a model description: a file whose top level is the [model] table's
// contents (input, trunk, heads).
ModelSpec load_model_file(const std::string& path);
// The embedded default: a small conv net on the synthetic shapes dataset.
RunConfig default_run_config();

std::unique_ptr<Dataset> make_train_dataset(const DataConfig& data);
std::unique_ptr<Dataset> make_test_dataset(const DataConfig& data);

}  // namespace ladon
