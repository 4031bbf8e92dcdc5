// Checkpoints as safetensors, and the run folder that holds them.
#include "ladon/checkpoint.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>

#include "engine/config_internal.hpp"
#include "engine/io/atomic_file.hpp"
#include "engine/io/safetensors.hpp"
#include "ladon/error.hpp"

namespace ladon {

namespace {

constexpr const char* format_name = "ladon-checkpoint-1";

int64_t metadata_integer(const io::SafetensorsFile& file, const std::string& key) {
    auto it = file.metadata().find(key);
    if (it == file.metadata().end())
        throw Error(fmt::format("{}: metadata has no '{}'; expected a ladon checkpoint", file.source(), key));
    int64_t value = 0;
    const auto [end, error] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), value);
    if (error != std::errc{} || end != it->second.data() + it->second.size() || value < 0)
        throw Error(fmt::format("{}: metadata '{}' is \"{}\"; expected a non-negative integer", file.source(), key,
                                it->second));
    return value;
}

io::SafetensorsFile open_checkpoint(const std::string& path) {
    io::SafetensorsFile file = io::read_safetensors(path, "checkpoint");
    auto it = file.metadata().find("format");
    if (it == file.metadata().end() || it->second != format_name)
        throw Error(fmt::format("{}: not a ladon checkpoint (metadata 'format' should be \"{}\")", file.source(),
                                format_name));
    return file;
}

}  // namespace

void save_checkpoint(Trainer& trainer, const RunConfig& config, const std::string& path) {
    const std::vector<StateTensor> state = trainer.state_tensors();
    std::vector<io::TensorToWrite> tensors;
    tensors.reserve(state.size());
    for (const auto& tensor : state) tensors.push_back(io::TensorToWrite::f32(tensor.name, tensor.shape, tensor.data));
    io::SafetensorsMetadata metadata{
        {"format", format_name},
        {"step", std::to_string(trainer.step())},
        {"optimizer_step", std::to_string(trainer.optimizer_step())},
        {"skipped_steps", std::to_string(trainer.skipped_steps())},
        {"seed", std::to_string(trainer.options().seed)},
        {"config", to_toml(config)},
    };
    io::write_safetensors_atomically(path, tensors, metadata, "checkpoint");
}

RunConfig read_checkpoint_config(const std::string& path) {
    const io::SafetensorsFile file = open_checkpoint(path);
    auto it = file.metadata().find("config");
    if (it == file.metadata().end())
        throw Error(fmt::format("{}: metadata has no 'config'; expected the run config as TOML", file.source()));
    return parse_checkpoint_config(it->second, fmt::format("{} (config in metadata)", path));
}

void load_checkpoint(Trainer& trainer, const std::string& path, bool weights_only) {
    const io::SafetensorsFile file = open_checkpoint(path);
    const std::vector<StateTensor> state = trainer.state_tensors();
    // Check every tensor before changing any, so a checkpoint of another
    // model leaves the trainer as it was.
    for (const auto& tensor : state) {
        if (weights_only && tensor.name.rfind("optimizer.", 0) == 0) continue;
        const io::SafetensorsTensor* stored = file.find(tensor.name);
        if (stored == nullptr)
            throw Error(fmt::format("{}: no tensor '{}': the checkpoint belongs to a different model", file.source(),
                                    tensor.name));
        if (stored->shape != tensor.shape) {
            auto dims = [](const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); };
            throw Error(fmt::format("{}: tensor '{}' has shape {}, expected {}: the checkpoint belongs to a different "
                                    "model",
                                    file.source(), tensor.name, dims(stored->shape), dims(tensor.shape)));
        }
    }
    for (const auto& tensor : state) {
        if (weights_only && tensor.name.rfind("optimizer.", 0) == 0) continue;
        file.copy_f32(tensor.name, tensor.shape, tensor.data);
    }
    trainer.state_tensors_written();
    if (!weights_only)
        trainer.set_progress(metadata_integer(file, "step"), metadata_integer(file, "optimizer_step"),
                             metadata_integer(file, "skipped_steps"));
}

RunFolder::RunFolder(std::filesystem::path path) : path_(std::move(path)) {
    std::error_code error;
    std::filesystem::create_directories(path_ / "checkpoints", error);
    if (error)
        throw Error(fmt::format("run folder {}: cannot create it: {}", path_.string(), error.message()));
    metrics_.open(path_ / "metrics.jsonl", std::ios::app);
    if (!metrics_)
        throw Error(fmt::format("run folder {}: cannot write {}", path_.string(), (path_ / "metrics.jsonl").string()));
}

void RunFolder::write_config(const RunConfig& config) {
    const std::string text = to_toml(config);
    io::AtomicFileWriter writer((path_ / "config.toml").string(), "run config");
    writer.write(text.data(), text.size());
    writer.commit();
}

void RunFolder::log(const std::string& json_line) {
    metrics_ << json_line << '\n';
    metrics_.flush();
    if (!metrics_) throw Error(fmt::format("run folder {}: writing metrics.jsonl failed", path_.string()));
}

std::vector<std::filesystem::path> RunFolder::checkpoints(const std::filesystem::path& folder) {
    std::vector<std::filesystem::path> found;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(folder / "checkpoints", error)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("step-", 0) == 0 && entry.path().extension() == ".safetensors") found.push_back(entry.path());
    }
    std::sort(found.begin(), found.end());  // zero-padded step numbers sort by step
    return found;
}

std::filesystem::path RunFolder::latest_checkpoint(const std::filesystem::path& folder) {
    const auto found = checkpoints(folder);
    if (found.empty())
        throw Error(fmt::format("run folder {}: no checkpoint to resume from (expected {}/checkpoints/step-*.safetensors)",
                                folder.string(), folder.string()));
    return found.back();
}

std::filesystem::path RunFolder::checkpoint(Trainer& trainer, const RunConfig& config, int64_t keep) {
    const auto file = path_ / "checkpoints" / fmt::format("step-{:09}.safetensors", trainer.step());
    save_checkpoint(trainer, config, file.string());
    auto found = checkpoints(path_);
    for (std::size_t i = 0; i + std::size_t(keep) < found.size(); ++i) std::filesystem::remove(found[i]);
    return file;
}

}  // namespace ladon
