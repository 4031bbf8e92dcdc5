// Writing a RunConfig back as TOML (for the run folder and checkpoint
// metadata, so a checkpoint carries the model it belongs to), and devices.
#include <fmt/format.h>

#include <charconv>
#include <sstream>
#include <type_traits>
#include <variant>

#include "engine/config_internal.hpp"
#include "engine/ops/op.hpp"
#include "engine/weighting/weighting.hpp"
#include "ladon/config.hpp"
#include "ladon/error.hpp"

namespace ladon {

// How configs write training.precision (also the run header's word).
const char* precision_name(Precision precision) {
    for (const auto& [name, value] : precision_names)
        if (value == precision) return name;
    return "?";
}

namespace {

using engine::OpField;
using engine::op_definition;
using engine::resolved;

// Shortest text that reads back as the same float.
std::string number(float value) {
    char buffer[32];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    std::string text(buffer, result.ptr);
    if (text.find_first_of(".eEn") == std::string::npos) text += ".0";  // stay a TOML float
    return text;
}

std::string number(double value) {
    std::string text = fmt::format("{}", value);  // shortest text that reads back as the same double
    if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
    return text;
}

// A TOML basic string: quotes and backslashes escaped, and every control
// character (TOML allows none raw but tab) as \uXXXX.
std::string quoted(const std::string& text) {
    std::string out = "\"";
    for (char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\')
            out += {'\\', c};
        else if (byte < 0x20 || byte == 0x7f)
            out += fmt::format("\\u{:04X}", byte);
        else
            out += c;
    }
    return out + "\"";
}

std::string pair(const std::array<int64_t, 2>& v) { return fmt::format("[{}, {}]", v[0], v[1]); }

std::string layer_toml(const LayerSpec& layer) {
    std::string out = fmt::format("{{ op = \"{}\"", op_definition(layer.op).name);
    if (!layer.name.empty()) out += ", name = " + quoted(layer.name);
    if (!layer.inputs.empty()) {
        out += ", inputs = [";
        for (std::size_t i = 0; i < layer.inputs.size(); ++i) out += (i ? ", " : "") + quoted(layer.inputs[i]);
        out += "]";
    }
    // The op's own keys (engine/ops/<op>.cpp), with their effective values.
    const LayerSpec effective = resolved(layer);
    for (const OpField& field : op_definition(layer.op).fields) {
        std::visit(
            [&](auto member) {
                const auto& value = effective.*member;
                using Value = std::decay_t<decltype(value)>;
                if constexpr (std::is_same_v<Value, std::array<int64_t, 2>>)
                    out += fmt::format(", {} = {}", field.key, pair(value));
                else if constexpr (std::is_same_v<Value, float>)
                    out += fmt::format(", {} = {}", field.key, number(value));
                else
                    out += fmt::format(", {} = {}", field.key, value);
            },
            field.member);
    }
    return out + " }";
}

void layers_toml(std::ostringstream& out, const char* key, const std::vector<LayerSpec>& layers) {
    out << key << " = [\n";
    for (const auto& layer : layers) out << "  " << layer_toml(layer) << ",\n";
    out << "]\n";
}

}  // namespace

Device parse_device(const std::string& text) {
    if (text == "auto") return {std::nullopt, 0};
    if (text == "cpu") return {Backend::cpu, 0};
    if (text == "cuda") return {Backend::cuda, 0};
    if (text.rfind("cuda:", 0) == 0) {
        int index = -1;
        const char* begin = text.data() + 5;
        const char* end = text.data() + text.size();
        const auto [ptr, error] = std::from_chars(begin, end, index);
        if (error == std::errc{} && ptr == end && index >= 0) return {Backend::cuda, index};
    }
    throw Error(fmt::format("unknown device \"{}\"; expected auto, cpu, cuda or cuda:N", text));
}

std::string to_toml(const RunConfig& config) {
    std::ostringstream out;
    const ModelSpec& m = config.model;
    out << "[model]\n" << fmt::format("input = [{}, {}, {}]\n", m.channels, m.height, m.width);
    layers_toml(out, "trunk", m.trunk);
    for (const auto& head : m.heads) {
        out << "\n[[model.heads]]\nname = " << quoted(head.name) << "\n";
        if (!head.input.empty()) out << "input = " << quoted(head.input) << "\n";
        out << "loss = \"" << to_string(head.loss) << "\"\nweight = " << number(head.weight)
            << "\nlabel_smoothing = " << number(head.label_smoothing) << "\nbeta = " << number(head.beta) << "\n";
        layers_toml(out, "layers", head.layers);
    }
    const TrainerOptions& t = config.training;
    out << "\n[training]\n"
        << fmt::format("epochs = {}\nbatch_size = {}\nmax_steps = {}\nseed = {}\nthreads = {}\n", t.epochs,
                       t.batch_size, t.max_steps, t.seed, t.threads)
        << "task_weighting = \"" << engine::task_weighting_method(t.task_weighting).name << "\"\n"
        << "on_non_finite_loss = \"" << (t.on_non_finite_loss == NonFiniteLoss::skip ? "skip" : "stop") << "\"\n"
        << "cuda_graphs = " << (t.cuda_graphs ? "true" : "false") << "\n"
        << "precision = \"" << precision_name(t.precision) << "\"\n"
        << "sync_batch_norm = " << (t.sync_batch_norm ? "true" : "false") << "\n"
        << "allreduce_bucket_mb = " << number(t.allreduce_bucket_mb) << "\n";
    const OptimizerOptions& o = t.optimizer;
    out << "\n[optimizer]\nkind = \"" << (o.kind == OptimizerOptions::Kind::sgd ? "sgd" : "adamw") << "\"\n"
        << "learning_rate = " << number(o.learning_rate) << "\nmomentum = " << number(o.momentum)
        << "\nnesterov = " << (o.nesterov ? "true" : "false") << "\nbeta1 = " << number(o.beta1)
        << "\nbeta2 = " << number(o.beta2) << "\nepsilon = " << number(o.epsilon)
        << "\nweight_decay = " << number(o.weight_decay) << "\n";
    const ScheduleOptions& s = t.schedule;
    const char* kind = s.kind == ScheduleOptions::Kind::step ? "step"
                       : s.kind == ScheduleOptions::Kind::cosine ? "cosine"
                                                                 : "constant";
    out << "\n[schedule]\nkind = \"" << kind << "\"\n"
        << fmt::format("warmup_steps = {}\nstep_size = {}\n", s.warmup_steps, s.step_size)
        << "gamma = " << number(s.gamma) << "\n"
        << fmt::format("total_steps = {}\n", s.total_steps) << "min_learning_rate = " << number(s.min_learning_rate)
        << "\n";
    const DataConfig& d = config.data;
    out << "\n[data]\ndataset = " << quoted(d.dataset) << "\ndirectory = " << quoted(d.directory) << "\n"
        << fmt::format("seed = {}\ntrain_size = {}\ntest_size = {}\ncanvas = {}\n", d.seed, d.train_size, d.test_size,
                       d.canvas)
        << "inputs = " << quoted(d.inputs) << "\ntest_inputs = " << quoted(d.test_inputs) << "\n";
    const AugmentationOptions& augment = t.augmentation;
    out << fmt::format("augment_shift = {}\naugment_flip = {}\nbox_tasks = [", augment.max_shift,
                       augment.horizontal_flip);
    for (std::size_t i = 0; i < augment.box_tasks.size(); ++i) out << (i ? ", " : "") << quoted(augment.box_tasks[i]);
    out << fmt::format("]\nprefetch = {}\n", t.prefetch_batches);
    for (const auto& task : d.tasks)
        out << "\n[[data.tasks]]\nname = " << quoted(task.name) << "\nkind = " << quoted(task.kind)
            << fmt::format("\nclasses = {}\n", task.classes) << "labels = " << quoted(task.labels)
            << "\nmask = " << quoted(task.mask) << "\ntest_labels = " << quoted(task.test_labels)
            << "\ntest_mask = " << quoted(task.test_mask) << "\n";
    const RunOptions& r = config.run;
    out << "\n[run]\noutput = " << quoted(r.output) << "\n"
        << fmt::format("checkpoint_every = {}\nkeep_checkpoints = {}\nlog_every = {}\n", r.checkpoint_every,
                       r.keep_checkpoints, r.log_every)
        << "device = " << quoted(r.device) << "\n";
    return out.str();
}

RunConfig with_overrides(const RunConfig& config, const std::vector<std::string>& overrides,
                         const std::string& source) {
    if (overrides.empty()) return config;
    return parse_run_config(to_toml(config), source, overrides);
}

}  // namespace ladon
