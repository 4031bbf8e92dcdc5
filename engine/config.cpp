// TOML run configs, read strictly: every key is known, every value typed.
#include "ladon/config.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <charconv>
#include <fstream>
#include <set>
#include <sstream>
#include <variant>

#include "engine/config_internal.hpp"
#include "engine/ops/op.hpp"
#include "engine/weighting/weighting.hpp"
#include "ladon/error.hpp"

namespace ladon {

namespace {

using engine::OpDefinition;
using engine::OpField;
using engine::find_op;
using engine::op_definitions;

// Reads one TOML table, remembering which keys were used, so that finish()
// can reject the rest (a typo in a key is an error, never silently ignored).
class TableReader {
public:
    TableReader(const toml::table& table, std::string path, const std::string& source)
        : table_(table), path_(std::move(path)), source_(source) {}

    [[noreturn]] void fail(const toml::node* node, const std::string& key, const std::string& message) const {
        const auto line = node != nullptr ? node->source().begin.line : table_.source().begin.line;
        // Values set with --set have no line in the file.
        if (line == 0) throw Error(fmt::format("{} (--set): {}: {}", source_, qualified(key), message));
        throw Error(fmt::format("{}:{}: {}: {}", source_, line, qualified(key), message));
    }
    // Fails at `key`'s line unless `ok`: the range checks after reading.
    void require(bool ok, const std::string& key, const std::string& message) {
        if (!ok) fail(node(key), key, message);
    }

    std::string qualified(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
    const std::string& path() const { return path_; }
    const std::string& source() const { return source_; }

    const toml::node* node(const std::string& key) {
        used_.insert(key);
        return table_.get(key);
    }

    template <typename T>
    bool read(const std::string& key, T& out) {
        const toml::node* n = node(key);
        if (n == nullptr) return false;
        if constexpr (std::is_same_v<T, bool>) {
            if (!n->is_boolean()) fail(n, key, fmt::format("expected true or false, got {}", describe(*n)));
            out = n->as_boolean()->get();
        } else if constexpr (std::is_integral_v<T>) {
            if (!n->is_integer()) fail(n, key, fmt::format("expected an integer, got {}", describe(*n)));
            const int64_t v = n->as_integer()->get();
            if (std::is_unsigned_v<T> && v < 0) fail(n, key, fmt::format("expected a non-negative integer, got {}", v));
            out = static_cast<T>(v);
        } else if constexpr (std::is_floating_point_v<T>) {
            if (n->is_integer())
                out = static_cast<T>(n->as_integer()->get());
            else if (n->is_floating_point())
                out = static_cast<T>(n->as_floating_point()->get());
            else
                fail(n, key, fmt::format("expected a number, got {}", describe(*n)));
        } else {
            if (!n->is_string()) fail(n, key, fmt::format("expected a string, got {}", describe(*n)));
            out = n->as_string()->get();
        }
        return true;
    }

    // An integer, or [height, width].
    bool read_pair(const std::string& key, std::array<int64_t, 2>& out) {
        const toml::node* n = node(key);
        if (n == nullptr) return false;
        if (n->is_integer()) {
            out = {n->as_integer()->get(), n->as_integer()->get()};
            return true;
        }
        const toml::array* a = n->as_array();
        if (a == nullptr || a->size() != 2 || !(*a)[0].is_integer() || !(*a)[1].is_integer())
            fail(n, key, fmt::format("expected an integer or [height, width], got {}", describe(*n)));
        out = {(*a)[0].as_integer()->get(), (*a)[1].as_integer()->get()};
        return true;
    }

    void finish() const {
        for (const auto& [key, value] : table_) {
            const std::string name(key.str());
            if (!used_.count(name)) fail(&value, name, "unknown key");
        }
    }

    static std::string describe(const toml::node& n) {
        switch (n.type()) {
            case toml::node_type::string:
                return fmt::format("the string \"{}\"", n.as_string()->get());
            case toml::node_type::table:
                return "a table";
            case toml::node_type::array:
                return "an array";
            case toml::node_type::boolean:
                return n.as_boolean()->get() ? "true" : "false";
            case toml::node_type::integer:
                return fmt::format("the integer {}", n.as_integer()->get());
            case toml::node_type::floating_point:
                return fmt::format("the number {}", n.as_floating_point()->get());
            default:
                return "a date or time";
        }
    }

private:
    const toml::table& table_;
    std::string path_;
    const std::string& source_;
    std::set<std::string> used_;
};

template <typename Enum, std::size_t N>
Enum read_enum(TableReader& reader, const std::string& key, const std::array<std::pair<const char*, Enum>, N>& names,
               Enum fallback) {
    std::string value;
    if (!reader.read(key, value)) return fallback;
    std::string choices;
    for (const auto& [name, e] : names) {
        if (value == name) return e;
        choices += (choices.empty() ? "" : ", ") + std::string(name);
    }
    reader.fail(reader.node(key), key, fmt::format("unknown value \"{}\"; expected one of: {}", value, choices));
}

// training.task_weighting: one of the methods in engine/weighting/.
TaskWeighting read_task_weighting(TableReader& reader) {
    std::string value;
    if (!reader.read("task_weighting", value)) return TaskWeighting::fixed;
    if (const engine::TaskWeightingMethod* method = engine::find_task_weighting(value)) return method->kind;
    std::string choices;
    for (const engine::TaskWeightingMethod* method : engine::task_weighting_methods())
        choices += (choices.empty() ? "" : ", ") + std::string(method->name);
    reader.fail(reader.node("task_weighting"), "task_weighting",
                fmt::format("unknown value \"{}\"; expected one of: {}", value, choices));
}

constexpr std::array<std::pair<const char*, Loss>, 4> loss_names{{
    {"softmax_cross_entropy", Loss::softmax_cross_entropy},
    {"sigmoid_binary_cross_entropy", Loss::sigmoid_binary_cross_entropy},
    {"mean_squared_error", Loss::mean_squared_error},
    {"smooth_l1", Loss::smooth_l1},
}};

const toml::table& as_table(TableReader& parent, const toml::node* n, const std::string& key) {
    if (n == nullptr || !n->is_table()) parent.fail(n, key, "expected a table");
    return *n->as_table();
}

// The op's own keys (engine/ops/<op>.cpp), each read into its LayerSpec member.
void read_op_fields(TableReader& reader, const OpDefinition& op, LayerSpec& layer) {
    for (const OpField& field : op.fields) {
        std::visit(
            [&](auto member) {
                if constexpr (std::is_same_v<decltype(member), std::array<int64_t, 2> LayerSpec::*>)
                    reader.read_pair(field.key, layer.*member);
                else
                    reader.read(field.key, layer.*member);
            },
            field.member);
    }
}

// Checkpoints written before effective values were written hold stride 0
// for "the default"; a user's 0 is an error.
void check_stride(TableReader& reader, const LayerSpec& layer, bool from_checkpoint) {
    const bool given = reader.node("stride") != nullptr;
    if (!given || from_checkpoint || (layer.stride[0] > 0 && layer.stride[1] > 0)) return;
    reader.fail(reader.node("stride"), "stride",
                fmt::format("expected positive values, got [{}, {}] (leave stride out for the default: {})",
                            layer.stride[0], layer.stride[1], layer.op == OpKind::conv2d ? "1" : "the kernel size"));
}

// A window's kernel: positive, or the effective stride (the kernel, for a
// pool) would be 0, which no config may hold.
void check_kernel(TableReader& reader, const LayerSpec& layer) {
    if (reader.node("kernel") == nullptr || (layer.kernel[0] > 0 && layer.kernel[1] > 0)) return;
    reader.fail(reader.node("kernel"), "kernel",
                fmt::format("expected positive values, got [{}, {}]", layer.kernel[0], layer.kernel[1]));
}

std::vector<LayerSpec> parse_layers(TableReader& parent, const std::string& key, bool from_checkpoint) {
    std::vector<LayerSpec> layers;
    const toml::node* n = parent.node(key);
    if (n == nullptr) return layers;
    const toml::array* array = n->as_array();
    if (array == nullptr) parent.fail(n, key, "expected an array of layer tables, e.g. [{ op = \"relu\" }]");
    for (std::size_t i = 0; i < array->size(); ++i) {
        const std::string item = fmt::format("{}[{}]", key, i);
        const toml::table& table = as_table(parent, array->get(i), item);
        TableReader reader(table, parent.qualified(item), parent.source());
        LayerSpec layer;
        std::string op_name;
        if (!reader.read("op", op_name)) reader.fail(&table, "op", "missing; every layer needs an op");
        const OpDefinition* op = find_op(op_name);
        if (op == nullptr) {
            std::string choices;
            for (const OpDefinition* known : op_definitions()) choices += (choices.empty() ? "" : ", ") + std::string(known->name);
            reader.fail(reader.node("op"), "op", fmt::format("unknown value \"{}\"; expected one of: {}", op_name, choices));
        }
        layer.op = op->kind;
        reader.read("name", layer.name);
        if (const toml::node* inputs = reader.node("inputs")) {
            const toml::array* a = inputs->as_array();
            if (a == nullptr) reader.fail(inputs, "inputs", "expected an array of layer names");
            for (const auto& v : *a) {
                if (!v.is_string()) reader.fail(&v, "inputs", "expected an array of layer names");
                layer.inputs.push_back(v.as_string()->get());
            }
        }
        read_op_fields(reader, *op, layer);
        reader.finish();
        check_kernel(reader, layer);
        check_stride(reader, layer, from_checkpoint);
        layers.push_back(std::move(layer));
    }
    return layers;
}

ModelSpec parse_model(TableReader& reader, bool from_checkpoint) {
    ModelSpec model;
    const toml::node* input = reader.node("input");
    const toml::array* dims = input != nullptr ? input->as_array() : nullptr;
    if (dims == nullptr || dims->size() != 3 || !dims->is_homogeneous(toml::node_type::integer))
        reader.fail(input, "input", "expected [channels, height, width] of integers");
    model.channels = (*dims)[0].as_integer()->get();
    model.height = (*dims)[1].as_integer()->get();
    model.width = (*dims)[2].as_integer()->get();
    model.trunk = parse_layers(reader, "trunk", from_checkpoint);
    const toml::node* heads = reader.node("heads");
    const toml::array* array = heads != nullptr ? heads->as_array() : nullptr;
    if (array == nullptr || array->empty())
        reader.fail(heads, "heads", "expected at least one head ([[model.heads]] with name, loss and layers)");
    for (std::size_t i = 0; i < array->size(); ++i) {
        const std::string item = fmt::format("heads[{}]", i);
        TableReader head_reader(as_table(reader, array->get(i), item), reader.qualified(item), reader.source());
        HeadSpec head;
        if (!head_reader.read("name", head.name)) head_reader.fail(nullptr, "name", "missing; every head needs a name");
        if (head_reader.node("loss") == nullptr) head_reader.fail(nullptr, "loss", "missing; every head needs a loss");
        head.loss = read_enum(head_reader, "loss", loss_names, Loss::softmax_cross_entropy);
        head_reader.read("input", head.input);
        head_reader.read("weight", head.weight);
        head_reader.read("label_smoothing", head.label_smoothing);
        head_reader.read("beta", head.beta);
        head.layers = parse_layers(head_reader, "layers", from_checkpoint);
        head_reader.finish();
        if (!(head.weight >= 0.0f)) head_reader.fail(nullptr, "weight", "expected a weight >= 0");
        if (!(head.label_smoothing >= 0.0f && head.label_smoothing < 1.0f))
            head_reader.fail(nullptr, "label_smoothing", "expected a value in [0, 1)");
        if (!(head.beta > 0.0f)) head_reader.fail(nullptr, "beta", "expected a value > 0");
        model.heads.push_back(std::move(head));
    }
    reader.finish();
    return model;
}

toml::table parse_toml(std::string_view text, const std::string& source) {
    try {
        return toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        throw Error(fmt::format("{}:{}:{}: malformed TOML: {}", source, e.source().begin.line, e.source().begin.column,
                                e.description()));
    }
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(fmt::format("{}: cannot open the config file", path));
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

namespace {

// Applies one `--set key.path=value` to the parsed file. The value is read as
// a TOML value (3e-4, true, [1, 2], "text"); a bare word that is not valid
// TOML is taken as a string, so `--set data.dataset=fashion-mtl` works.
// Numeric path segments index arrays: `model.heads.0.weight=2`.
void apply_override(toml::table& root, const std::string& assignment, const std::string& source) {
    const auto equals = assignment.find('=');
    if (equals == std::string::npos || equals == 0)
        throw Error(fmt::format("{} (--set): '{}' is not key=value", source, assignment));
    const std::string key = assignment.substr(0, equals), text = assignment.substr(equals + 1);
    toml::table value_table;
    try {
        value_table = toml::parse("value = " + text);
    } catch (const toml::parse_error&) {
        value_table = toml::table{{"value", text}};
    }
    toml::node& value = *value_table.get("value");

    std::vector<std::string> parts;
    for (std::size_t begin = 0;;) {
        const auto dot = key.find('.', begin);
        parts.push_back(key.substr(begin, dot - begin));
        if (dot == std::string::npos) break;
        begin = dot + 1;
    }
    toml::node* current = &root;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        const std::string& part = parts[i];
        if (toml::table* table = current->as_table()) {
            if (table->get(part) == nullptr) table->insert(part, toml::table{});
            current = table->get(part);
        } else if (toml::array* array = current->as_array()) {
            std::size_t index = 0;
            const auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), index);
            if (error != std::errc{} || end != part.data() + part.size() || index >= array->size())
                throw Error(fmt::format("{} (--set): {}: '{}' is not an index of an array of {} items", source, key,
                                        part, array->size()));
            current = array->get(index);
        } else {
            throw Error(fmt::format("{} (--set): {}: '{}' is a value, not a table", source, key, part));
        }
    }
    toml::table* parent = current->as_table();
    if (parent == nullptr) throw Error(fmt::format("{} (--set): {}: the key's parent is not a table", source, key));
    value.visit([&](auto&& v) { parent->insert_or_assign(parts.back(), v); });
}

}  // namespace

namespace {

RunConfig parse(std::string_view text, const std::string& source, const std::vector<std::string>& overrides,
                bool from_checkpoint) {
    toml::table root = parse_toml(text, source);
    for (const auto& assignment : overrides) apply_override(root, assignment, source);
    TableReader top(root, "", source);
    RunConfig config;
    {
        const toml::node* model = top.node("model");
        if (model == nullptr) top.fail(nullptr, "model", "missing; a run config needs a [model] table");
        TableReader reader(as_table(top, model, "model"), "model", source);
        config.model = parse_model(reader, from_checkpoint);
    }
    if (const toml::node* n = top.node("training")) {
        TableReader reader(as_table(top, n, "training"), "training", source);
        TrainerOptions& t = config.training;
        reader.read("epochs", t.epochs);
        reader.read("batch_size", t.batch_size);
        reader.read("max_steps", t.max_steps);
        reader.read("seed", t.seed);
        reader.read("threads", t.threads);
        reader.read("cuda_graphs", t.cuda_graphs);
        reader.read("sync_batch_norm", t.sync_batch_norm);
        reader.read("allreduce_bucket_mb", t.allreduce_bucket_mb);
        t.on_non_finite_loss = read_enum(reader, "on_non_finite_loss",
                                         std::array<std::pair<const char*, NonFiniteLoss>, 2>{
                                             {{"stop", NonFiniteLoss::stop}, {"skip", NonFiniteLoss::skip}}},
                                         NonFiniteLoss::stop);
        t.task_weighting = read_task_weighting(reader);
        t.precision = read_enum(reader, "precision", precision_names, Precision::automatic);
        reader.finish();
        reader.require(t.epochs > 0, "epochs", "expected a positive number of epochs");
        reader.require(t.batch_size > 0, "batch_size", "expected a positive batch size");
        reader.require(t.threads >= 0, "threads", "expected 0 (all cores) or more");
        reader.require(t.allreduce_bucket_mb >= 0.0 && t.allreduce_bucket_mb <= 1048576.0, "allreduce_bucket_mb",
                       fmt::format("expected 0 (one collective after the backward pass) to 1048576 MiB, got {}",
                                   t.allreduce_bucket_mb));
    }
    if (const toml::node* n = top.node("optimizer")) {
        TableReader reader(as_table(top, n, "optimizer"), "optimizer", source);
        OptimizerOptions& o = config.training.optimizer;
        o.kind = read_enum(
            reader, "kind",
            std::array<std::pair<const char*, OptimizerOptions::Kind>, 3>{{{"sgd", OptimizerOptions::Kind::sgd},
                                                                           {"adamw", OptimizerOptions::Kind::adamw},
                                                                           {"adam", OptimizerOptions::Kind::adamw}}},
            OptimizerOptions::Kind::adamw);
        reader.read("learning_rate", o.learning_rate);
        reader.read("momentum", o.momentum);
        reader.read("nesterov", o.nesterov);
        reader.read("beta1", o.beta1);
        reader.read("beta2", o.beta2);
        reader.read("epsilon", o.epsilon);
        reader.read("weight_decay", o.weight_decay);
        reader.finish();
        reader.require(o.learning_rate > 0.0f, "learning_rate", "expected a value > 0");
        reader.require(o.weight_decay >= 0.0f, "weight_decay", "expected a value >= 0");
        reader.require(o.momentum >= 0.0f && o.momentum < 1.0f, "momentum", "expected a value in [0, 1)");
        reader.require(o.beta1 >= 0.0f && o.beta1 < 1.0f, "beta1", "expected a value in [0, 1)");
        reader.require(o.beta2 >= 0.0f && o.beta2 < 1.0f, "beta2", "expected a value in [0, 1)");
    }
    if (const toml::node* n = top.node("schedule")) {
        TableReader reader(as_table(top, n, "schedule"), "schedule", source);
        ScheduleOptions& s = config.training.schedule;
        s.kind = read_enum(
            reader, "kind",
            std::array<std::pair<const char*, ScheduleOptions::Kind>, 3>{{{"constant", ScheduleOptions::Kind::constant},
                                                                          {"step", ScheduleOptions::Kind::step},
                                                                          {"cosine", ScheduleOptions::Kind::cosine}}},
            ScheduleOptions::Kind::constant);
        reader.read("warmup_steps", s.warmup_steps);
        reader.read("step_size", s.step_size);
        reader.read("gamma", s.gamma);
        reader.read("total_steps", s.total_steps);
        reader.read("min_learning_rate", s.min_learning_rate);
        reader.finish();
        reader.require(s.warmup_steps >= 0, "warmup_steps", "expected a value >= 0");
        reader.require(s.step_size > 0, "step_size", "expected a value > 0");
    }
    if (const toml::node* n = top.node("data")) {
        TableReader reader(as_table(top, n, "data"), "data", source);
        DataConfig& d = config.data;
        reader.read("dataset", d.dataset);
        reader.read("directory", d.directory);
        reader.read("seed", d.seed);
        reader.read("train_size", d.train_size);
        reader.read("test_size", d.test_size);
        reader.read("canvas", d.canvas);
        AugmentationOptions& augment = config.training.augmentation;
        reader.read("augment_shift", augment.max_shift);
        reader.read("augment_flip", augment.horizontal_flip);
        if (const toml::node* boxes = reader.node("box_tasks")) {
            const toml::array* a = boxes->as_array();
            if (a == nullptr) reader.fail(boxes, "box_tasks", "expected an array of task names");
            for (const auto& v : *a) {
                if (!v.is_string()) reader.fail(&v, "box_tasks", "expected an array of task names");
                augment.box_tasks.push_back(v.as_string()->get());
            }
        }
        reader.require(augment.max_shift >= 0, "augment_shift", "expected pixels >= 0");
        reader.read("prefetch", config.training.prefetch_batches);
        reader.require(config.training.prefetch_batches >= 0, "prefetch",
                       "expected the number of batches to load ahead, >= 0 (0: load in the training thread)");
        reader.read("inputs", d.inputs);
        reader.read("test_inputs", d.test_inputs);
        if (const toml::node* tasks = reader.node("tasks")) {
            const toml::array* array = tasks->as_array();
            if (array == nullptr) reader.fail(tasks, "tasks", "expected [[data.tasks]] tables");
            for (std::size_t i = 0; i < array->size(); ++i) {
                const std::string item = fmt::format("tasks[{}]", i);
                TableReader task_reader(as_table(reader, array->get(i), item), reader.qualified(item), source);
                NpyTaskConfig task;
                if (!task_reader.read("name", task.name))
                    task_reader.fail(nullptr, "name", "missing; every task needs a name");
                task_reader.read("kind", task.kind);
                task_reader.read("classes", task.classes);
                if (!task_reader.read("labels", task.labels))
                    task_reader.fail(nullptr, "labels", "missing; expected the path of the task's .npy labels");
                task_reader.read("mask", task.mask);
                task_reader.read("test_labels", task.test_labels);
                task_reader.read("test_mask", task.test_mask);
                task_reader.finish();
                task_reader.require(
                    task.kind == "classes" || task.kind == "binary" || task.kind == "regression", "kind",
                    fmt::format("unknown kind \"{}\"; expected classes, binary or regression", task.kind));
                task_reader.require(task.kind != "classes" || task.classes >= 2, "classes",
                                    "expected the number of classes (>= 2)");
                if (!d.test_inputs.empty() && task.test_labels.empty())
                    task_reader.fail(nullptr, "test_labels",
                                     "missing; data.test_inputs is set, so every task needs test labels");
                d.tasks.push_back(std::move(task));
            }
        }
        reader.finish();
        reader.require(
            d.dataset == "synthetic" || d.dataset == "fashion-mtl" || d.dataset == "npy", "dataset",
            fmt::format("unknown dataset \"{}\"; expected \"synthetic\", \"fashion-mtl\" or \"npy\"", d.dataset));
        if (d.dataset == "npy" && d.inputs.empty())
            reader.fail(nullptr, "inputs", "missing; an npy dataset needs the path of its inputs (.npy)");
        if (d.train_size < 0 || d.test_size < 0) reader.fail(nullptr, "train_size", "expected sizes >= 0");
    }
    if (const toml::node* n = top.node("run")) {
        TableReader reader(as_table(top, n, "run"), "run", source);
        RunOptions& r = config.run;
        reader.read("output", r.output);
        reader.read("checkpoint_every", r.checkpoint_every);
        reader.read("keep_checkpoints", r.keep_checkpoints);
        reader.read("log_every", r.log_every);
        reader.read("device", r.device);
        reader.finish();
        reader.require(!r.output.empty(), "output", "expected a folder name");
        reader.require(r.checkpoint_every >= 0, "checkpoint_every", "expected 0 (epoch ends only) or more");
        reader.require(r.keep_checkpoints >= 1, "keep_checkpoints", "expected 1 or more");
        reader.require(r.log_every >= 1, "log_every", "expected 1 or more");
        try {
            parse_device(r.device);
        } catch (const Error& e) {
            reader.fail(reader.node("device"), "device", e.what());
        }
    }
    top.finish();
    return config;
}

}  // namespace

RunConfig parse_run_config(std::string_view text, const std::string& source,
                           const std::vector<std::string>& overrides) {
    return parse(text, source, overrides, false);
}

RunConfig parse_checkpoint_config(std::string_view text, const std::string& source) {
    return parse(text, source, {}, true);
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
    return parse_run_config(read_file(path), path, overrides);
}

ModelSpec load_model_file(const std::string& path) {
    const toml::table root = parse_toml(read_file(path), path);
    TableReader reader(root, "", path);
    return parse_model(reader, false);
}

RunConfig default_run_config() {
    ModelBuilder builder(1, 24, 24);
    builder.trunk()
        .conv2d(16, 3, 1, 1)
        .relu()
        .max_pool2d(2)
        .conv2d(32, 3, 1, 1)
        .relu()
        .max_pool2d(2)
        .flatten()
        .dense(64)
        .relu();
    builder.head("shape", Loss::softmax_cross_entropy).dense(4);
    builder.head("filled", Loss::sigmoid_binary_cross_entropy).dense(1);
    builder.head("box", Loss::smooth_l1).dense(4);
    RunConfig config;
    config.model = builder.build();
    config.training.batch_size = 32;
    config.training.epochs = 3;
    config.training.optimizer.kind = OptimizerOptions::Kind::adamw;
    config.training.optimizer.learning_rate = 2e-3f;
    config.data.dataset = "synthetic";
    return config;
}

namespace {
std::unique_ptr<Dataset> npy_dataset(const DataConfig& data, bool test) {
    NpyDatasetOptions options;
    options.inputs = test ? data.test_inputs : data.inputs;
    for (const auto& task : data.tasks) {
        NpyTaskOptions t;
        t.name = task.name;
        t.kind = task.kind == "classes"  ? TaskKind::classes
                 : task.kind == "binary" ? TaskKind::binary
                                         : TaskKind::regression;
        t.path = test ? task.test_labels : task.labels;
        t.mask_path = test ? task.test_mask : task.mask;
        t.num_classes = task.kind == "classes" ? task.classes : 0;
        options.tasks.push_back(std::move(t));
    }
    return make_npy_dataset(options);
}
}  // namespace

std::unique_ptr<Dataset> make_train_dataset(const DataConfig& data) {
    if (data.dataset == "npy") return npy_dataset(data, false);
    if (data.dataset == "fashion-mtl")
        return make_fashion_mtl_dataset({data.directory, true, data.seed, data.train_size});
    return make_synthetic_dataset({data.seed, data.train_size > 0 ? data.train_size : 4096, data.canvas});
}

std::unique_ptr<Dataset> make_test_dataset(const DataConfig& data) {
    if (data.dataset == "npy") return data.test_inputs.empty() ? nullptr : npy_dataset(data, true);
    if (data.dataset == "fashion-mtl")
        return make_fashion_mtl_dataset({data.directory, false, data.seed + 1, data.test_size});
    // A different seed: test samples are new draws, not the training set.
    return make_synthetic_dataset({data.seed + 1000003, data.test_size > 0 ? data.test_size : 1024, data.canvas});
}

}  // namespace ladon
