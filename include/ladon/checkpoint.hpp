#pragma once
// Checkpoints and run folders.
//
// A checkpoint is one safetensors file: the weights under PyTorch's names
// (`trunk.0.weight`, `heads.left.0.bias`), batch-norm running statistics,
// the optimizer's moments (`optimizer.exp_avg.<name>`), learned task weights,
// and in its metadata the progress (step, optimizer step) and the whole run
// config as TOML, so the file alone rebuilds the model. Written to a
// temporary file, fsynced and renamed: a crash never leaves half a checkpoint.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ladon/config.hpp"
#include "ladon/training.hpp"

namespace ladon {

void save_checkpoint(Trainer& trainer, const RunConfig& config, const std::string& path);
// The run config stored in a checkpoint.
RunConfig read_checkpoint_config(const std::string& path);
// Restores a trainer built for the checkpoint's model. Throws, naming the file
// and the tensor, when the checkpoint belongs to a different model; with
// weights_only the optimizer state and progress are left alone.
void load_checkpoint(Trainer& trainer, const std::string& path, bool weights_only = false);

// A run folder: config.toml (the resolved config), metrics.jsonl, and
// checkpoints/step-NNNNNNNNN.safetensors, of which the newest K are kept.
class RunFolder {
public:
    // Creates the folder (and parents); throws if it cannot be written.
    explicit RunFolder(std::filesystem::path path);
    const std::filesystem::path& path() const { return path_; }

    void write_config(const RunConfig& config);  // atomically, as config.toml
    // Appends one JSON object (one line) to metrics.jsonl and flushes it.
    void log(const std::string& json_line);
    // Writes a checkpoint for the trainer's current step, then deletes all but
    // the newest `keep`. Returns its path.
    std::filesystem::path checkpoint(Trainer& trainer, const RunConfig& config, int64_t keep);

    // The newest checkpoint in a run folder; throws if there is none.
    static std::filesystem::path latest_checkpoint(const std::filesystem::path& folder);
    static std::vector<std::filesystem::path> checkpoints(const std::filesystem::path& folder);

private:
    std::filesystem::path path_;
    std::ofstream metrics_;
};

}  // namespace ladon
