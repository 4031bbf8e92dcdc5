// TOML run configs: the same model as the C++ builder, and errors that name
// the file, the line, the key and what was expected.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "engine/cpu_executor.hpp"
#include "engine/graph.hpp"
#include "engine_test_support.hpp"
#include "ladon/config.hpp"
#include "ladon/error.hpp"

namespace ladon {
namespace {

// ladon::testing::dag_model() written as TOML.
constexpr const char* kDagModel = R"(
[model]
input = [2, 9, 7]
trunk = [
  { op = "conv2d", out_channels = 4, kernel = 3, padding = 1, bias = false },
  { op = "batch_norm" },
  { op = "relu" },
  { op = "max_pool2d", kernel = 2, name = "pooled" },
  { op = "conv2d", out_channels = 4, kernel = [3, 3], stride = 2, inputs = ["input"] },
  { op = "tanh", name = "side" },
  { op = "add", inputs = ["pooled", "side"], name = "sum" },
  { op = "conv2d", out_channels = 2, kernel = 1, inputs = ["pooled"], name = "narrow" },
  { op = "concat", inputs = ["sum", "narrow"] },
  { op = "avg_pool2d", kernel = 2, stride = 1 },
  { op = "flatten" },
  { op = "dense", out_features = 8 },
  { op = "leaky_relu", negative_slope = 0.1 },
]

[[model.heads]]
name = "cls"
loss = "softmax_cross_entropy"
label_smoothing = 0.1
layers = [{ op = "dropout", probability = 0.25 }, { op = "dense", out_features = 5 }]

[[model.heads]]
name = "box"
loss = "smooth_l1"
weight = 0.5
beta = 0.5
layers = [{ op = "dense", out_features = 4 }]

[[model.heads]]
name = "tags"
loss = "sigmoid_binary_cross_entropy"
weight = 2
input = "sum"
layers = [{ op = "dense", out_features = 3 }]
)";

// A small valid run config; the error tests spoil one line of it.
constexpr const char* kRunConfig = R"([model]
input = [1, 24, 24]
trunk = [
  { op = "conv2d", out_channels = 8, kernel = 3, padding = 1 },
  { op = "relu" },
]

[[model.heads]]
name = "shape"
loss = "softmax_cross_entropy"
layers = [{ op = "dense", out_features = 4 }]

[training]
epochs = 2
batch_size = 16

[optimizer]
kind = "sgd"
learning_rate = 0.01

[schedule]
kind = "cosine"
warmup_steps = 10

[data]
dataset = "synthetic"
train_size = 512
)";

// kRunConfig with the first occurrence of `from` replaced by `to`.
std::string spoilt(const std::string& from, const std::string& to) {
    std::string text = kRunConfig;
    const auto at = text.find(from);
    if (at == std::string::npos) throw std::runtime_error("not in the config: " + from);
    return text.replace(at, from.size(), to);
}

// 1-based line of the first occurrence of `needle` in `text`.
int line_of(const std::string& text, const std::string& needle) {
    const auto at = text.find(needle);
    if (at == std::string::npos) throw std::runtime_error("not in the text: " + needle);
    return 1 + int(std::count(text.begin(), text.begin() + std::ptrdiff_t(at), '\n'));
}

std::string parse_error(const std::string& text) {
    try {
        parse_run_config(text, "test.toml");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(EngineConfig, TomlModelEqualsTheBuilderModel) {
    const ModelSpec from_toml = parse_run_config(kDagModel, "dag.toml").model;
    const ModelSpec from_builder = ladon::testing::dag_model();
    const engine::Graph toml_graph = engine::build_graph(from_toml, 3);
    const engine::Graph builder_graph = engine::build_graph(from_builder, 3);
    ASSERT_EQ(toml_graph.parameter_count, builder_graph.parameter_count);
    ASSERT_EQ(toml_graph.parameters.size(), builder_graph.parameters.size());
    for (std::size_t i = 0; i < toml_graph.parameters.size(); ++i) {
        EXPECT_EQ(toml_graph.parameters[i].name, builder_graph.parameters[i].name);
        EXPECT_EQ(toml_graph.parameters[i].dims, builder_graph.parameters[i].dims);
    }
    ASSERT_EQ(toml_graph.tensors.size(), builder_graph.tensors.size());
    for (std::size_t t = 0; t < toml_graph.tensors.size(); ++t)
        EXPECT_EQ(toml_graph.tensors[t].shape.str(), builder_graph.tensors[t].shape.str());

    // Same seed: the same initial parameters, and (with every option carried
    // over: dropout, slopes, label smoothing, beta, weights) the same losses.
    engine::CpuExecutor toml_executor(toml_graph, {.seed = 17});
    engine::CpuExecutor builder_executor(builder_graph, {.seed = 17});
    ASSERT_TRUE(std::equal(toml_executor.parameters().begin(), toml_executor.parameters().end(),
                           builder_executor.parameters().begin(), builder_executor.parameters().end()));
    const engine::Batch batch = ladon::testing::make_batch(toml_executor, 3);
    toml_executor.forward(batch, true);
    builder_executor.forward(batch, true);
    EXPECT_EQ(toml_executor.compute_loss(batch), builder_executor.compute_loss(batch));
    for (int h = 0; h < 3; ++h) EXPECT_EQ(toml_executor.head_weights()[h], builder_executor.head_weights()[h]);
}

TEST(EngineConfig, ReadsEverySection) {
    const RunConfig config = parse_run_config(kRunConfig, "test.toml");
    EXPECT_EQ(config.model.channels, 1);
    EXPECT_EQ(config.model.height, 24);
    ASSERT_EQ(config.model.trunk.size(), 2u);
    EXPECT_EQ(config.model.trunk[0].op, OpKind::conv2d);
    EXPECT_EQ(config.model.trunk[0].kernel, (std::array<int64_t, 2>{3, 3}));
    EXPECT_EQ(config.model.trunk[0].padding, (std::array<int64_t, 2>{1, 1}));
    EXPECT_EQ(config.model.trunk[0].stride, (std::array<int64_t, 2>{0, 0}));  // the op's default
    ASSERT_EQ(config.model.heads.size(), 1u);
    EXPECT_EQ(config.model.heads[0].name, "shape");
    EXPECT_EQ(config.training.epochs, 2);
    EXPECT_EQ(config.training.batch_size, 16);
    EXPECT_EQ(config.training.seed, 1u);  // untouched defaults stay
    EXPECT_EQ(config.training.optimizer.kind, OptimizerOptions::Kind::sgd);
    EXPECT_FLOAT_EQ(config.training.optimizer.learning_rate, 0.01f);
    EXPECT_EQ(config.training.schedule.kind, ScheduleOptions::Kind::cosine);
    EXPECT_EQ(config.training.schedule.warmup_steps, 10);
    EXPECT_EQ(config.data.dataset, "synthetic");
    EXPECT_EQ(config.data.train_size, 512);
}

TEST(EngineConfig, SyncBatchNormIsOffByDefaultAndReadAsABoolean) {
    EXPECT_FALSE(parse_run_config(kRunConfig, "test.toml").training.sync_batch_norm);
    EXPECT_TRUE(parse_run_config(spoilt("[training]", "[training]\nsync_batch_norm = true"), "test.toml")
                    .training.sync_batch_norm);
    EXPECT_NE(parse_error(spoilt("[training]", "[training]\nsync_batch_norm = 1"))
                  .find("training.sync_batch_norm: expected true or false, got"),
              std::string::npos);
}

TEST(EngineConfig, AllreduceBucketSizeIsZeroByDefaultAndANonNegativeNumberOfMiB) {
    EXPECT_EQ(parse_run_config(kRunConfig, "test.toml").training.allreduce_bucket_mb, 0.0);
    EXPECT_EQ(parse_run_config(spoilt("[training]", "[training]\nallreduce_bucket_mb = 0.25"), "test.toml")
                  .training.allreduce_bucket_mb,
              0.25);
    EXPECT_EQ(parse_run_config(spoilt("[training]", "[training]\nallreduce_bucket_mb = 25"), "test.toml")
                  .training.allreduce_bucket_mb,
              25.0);
    EXPECT_NE(parse_error(spoilt("[training]", "[training]\nallreduce_bucket_mb = -1"))
                  .find("training.allreduce_bucket_mb: expected 0 (one collective after the backward pass) to "
                        "1048576 MiB, got -1"),
              std::string::npos);
    EXPECT_NE(parse_error(spoilt("[training]", "[training]\nallreduce_bucket_mb = nan"))
                  .find("training.allreduce_bucket_mb: expected 0"),
              std::string::npos);
    EXPECT_NE(parse_error(spoilt("[training]", "[training]\nallreduce_bucket_mb = \"big\""))
                  .find("training.allreduce_bucket_mb: expected a number, got"),
              std::string::npos);
}

TEST(EngineConfig, NonSquareKernelsStridesAndPaddingsAreHeightWidthPairs) {
    const RunConfig config = parse_run_config(
        spoilt("kernel = 3, padding = 1", "kernel = [3, 1], stride = [2, 1], padding = [1, 0]"), "test.toml");
    EXPECT_EQ(config.model.trunk[0].kernel, (std::array<int64_t, 2>{3, 1}));
    EXPECT_EQ(config.model.trunk[0].stride, (std::array<int64_t, 2>{2, 1}));
    EXPECT_EQ(config.model.trunk[0].padding, (std::array<int64_t, 2>{1, 0}));
}

TEST(EngineConfig, MalformedTomlNamesFileAndLine) {
    const std::string text = spoilt("batch_size = 16", "batch_size = = 16");
    const std::string message = parse_error(text);
    EXPECT_EQ(message.rfind("test.toml:" + std::to_string(line_of(text, "batch_size")) + ":", 0), 0u) << message;
    EXPECT_NE(message.find("malformed TOML"), std::string::npos) << message;
}

TEST(EngineConfig, UnknownKeyNamesFileLineAndKey) {
    const std::string text = spoilt("epochs = 2", "epoch = 3");
    EXPECT_EQ(parse_error(text),
              "test.toml:" + std::to_string(line_of(text, "epoch =")) + ": training.epoch: unknown key");
}

TEST(EngineConfig, UnknownKeyInALayerNamesTheLayer) {
    const std::string text = spoilt("{ op = \"relu\" }", "{ op = \"relu\", slope = 2 }");
    const std::string message = parse_error(text);
    EXPECT_EQ(
        message.rfind("test.toml:" + std::to_string(line_of(text, "slope")) + ": model.trunk[1].slope: unknown key", 0),
        0u)
        << message;
}

TEST(EngineConfig, WrongTypeSaysWhatWasExpectedAndWhatCame) {
    const std::string text = spoilt("batch_size = 16", "batch_size = \"big\"");
    EXPECT_EQ(parse_error(text), "test.toml:" + std::to_string(line_of(text, "batch_size")) +
                                     ": training.batch_size: expected an integer, got the string \"big\"");
}

TEST(EngineConfig, UnknownOpListsTheKnownOps) {
    const std::string text = spoilt("op = \"conv2d\"", "op = \"convolution\"");
    const std::string message = parse_error(text);
    EXPECT_EQ(message.rfind("test.toml:" + std::to_string(line_of(text, "convolution")) +
                                ": model.trunk[0].op: unknown value \"convolution\"; expected one of: conv2d, ",
                            0),
              0u)
        << message;
    EXPECT_NE(message.find("batch_norm"), std::string::npos) << message;
}

TEST(EngineConfig, UnknownLossListsTheKnownLosses) {
    const std::string text = spoilt("loss = \"softmax_cross_entropy\"", "loss = \"hinge\"");
    const std::string message = parse_error(text);
    EXPECT_EQ(message.rfind("test.toml:" + std::to_string(line_of(text, "hinge")) +
                                ": model.heads[0].loss: unknown value \"hinge\"; expected one of: ",
                            0),
              0u)
        << message;
    EXPECT_NE(message.find("smooth_l1"), std::string::npos) << message;
}

TEST(EngineConfig, NegativeLearningRateIsAnError) {
    const std::string text = spoilt("learning_rate = 0.01", "learning_rate = -0.01");
    EXPECT_EQ(parse_error(text), "test.toml:" + std::to_string(line_of(text, "learning_rate")) +
                                     ": optimizer.learning_rate: expected a value > 0");
}

TEST(EngineConfig, UnknownDatasetNamesTheChoices) {
    const std::string text = spoilt("dataset = \"synthetic\"", "dataset = \"imagenet\"");
    EXPECT_EQ(parse_error(text), "test.toml:" + std::to_string(line_of(text, "imagenet")) +
                                     ": data.dataset: unknown dataset \"imagenet\"; expected \"synthetic\", "
                                     "\"fashion-mtl\" or \"npy\"");
}

TEST(EngineConfig, OtherImpossibleValuesAreErrors) {
    EXPECT_NE(parse_error(spoilt("epochs = 2", "epochs = 0")).find("training.epochs: expected a positive"),
              std::string::npos);
    EXPECT_NE(parse_error(spoilt("warmup_steps = 10", "warmup_steps = -1")).find("schedule.warmup_steps"),
              std::string::npos);
    EXPECT_NE(parse_error(spoilt("kind = \"sgd\"", "kind = \"lbfgs\"")).find("optimizer.kind: unknown value \"lbfgs\""),
              std::string::npos);
    EXPECT_NE(parse_error(spoilt("input = [1, 24, 24]", "input = [1, 24]"))
                  .find("model.input: expected [channels, "
                        "height, width]"),
              std::string::npos);
    EXPECT_NE(parse_error(spoilt("{ op = \"relu\" }", "{ name = \"r\" }")).find("model.trunk[1].op: missing"),
              std::string::npos);
    EXPECT_NE(parse_error(spoilt("[training]", "[training]\nseed = -3")).find("training.seed: expected a non-negative"),
              std::string::npos);
    EXPECT_NE(parse_error(spoilt("[data]", "[colour]\nhue = 1\n[data]")).find("colour: unknown key"),
              std::string::npos);
    EXPECT_NE(parse_error(spoilt("[data]", "[data]\nprefetch = -1"))
                  .find("data.prefetch: expected the number of batches to load ahead, >= 0 (0: load in the training "
                        "thread)"),
              std::string::npos);
}

TEST(EngineConfig, MissingFileIsAnErrorNamingIt) {
    try {
        load_run_config("/nonexistent/ladon/run.toml");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "/nonexistent/ladon/run.toml: cannot open the config file");
    }
}

TEST(EngineConfig, ModelFileHoldsOnlyTheModelTablesContents) {
    std::string text = kDagModel;
    text.replace(text.find("[model]\n"), 8, "");
    std::string::size_type at;
    while ((at = text.find("[[model.heads]]")) != std::string::npos) text.replace(at, 15, "[[heads]]");
    const std::string path = ::testing::TempDir() + "ladon_dag_model.toml";
    std::ofstream(path) << text;
    const ModelSpec model = load_model_file(path);
    std::remove(path.c_str());
    EXPECT_EQ(engine::build_graph(model, 3).parameter_count,
              engine::build_graph(ladon::testing::dag_model(), 3).parameter_count);
    EXPECT_EQ(model.heads[2].input, "sum");
}

TEST(EngineConfig, FashionExampleParsesAndBuilds) {
    const RunConfig config = load_run_config("examples/fashion_mtl.toml");
    EXPECT_EQ(config.data.dataset, "fashion-mtl");
    EXPECT_EQ(config.training.batch_size, 128);
    ASSERT_EQ(config.model.heads.size(), 4u);
    const engine::Graph graph = engine::build_graph(config.model, 2);
    EXPECT_EQ(graph.heads[0].spec.name, "left");
    EXPECT_EQ(graph.heads[0].width, 10);
    EXPECT_EQ(graph.heads[2].width, 4);
    EXPECT_EQ(graph.heads[3].spec.loss, Loss::sigmoid_binary_cross_entropy);
}

// bench/models/resnet18.toml is torchvision's resnet18 without its 1000-class
// classifier: 11,689,512 - 513,000 = 11,176,512 trunk parameters, 512
// features out of a 7 x 7 map; then its two heads. One CPU training step at
// batch 2 runs (about 22 GFLOP) with finite losses.
TEST(EngineConfig, ResNet18BenchModelIsTorchvisionsTrunk) {
    const RunConfig config = load_run_config("bench/models/resnet18.toml");
    const engine::Graph graph = engine::build_graph(config.model, 2);
    constexpr int64_t trunk = 11176512, heads = (512 * 200 + 200) + (512 * 24 + 24);
    EXPECT_EQ(trunk + heads, graph.parameter_count);
    ASSERT_EQ(2u, graph.heads.size());
    EXPECT_EQ(200, graph.heads[0].width);
    EXPECT_EQ(24, graph.heads[1].width);
    const auto conv_outputs = std::count_if(graph.nodes.begin(), graph.nodes.end(),
                                            [](const engine::Node& n) { return n.spec.op == OpKind::conv2d; });
    EXPECT_EQ(20, conv_outputs) << "17 convolutions of 3 x 3 or 7 x 7 and 3 shortcut projections";

    engine::CpuExecutor executor(graph, {.seed = 3});
    const engine::Batch batch = ladon::testing::make_batch(executor, 5);
    EXPECT_TRUE(executor.train_step(batch, config.training.optimizer, 1e-3f));
    for (const float loss : executor.head_losses()) EXPECT_TRUE(std::isfinite(loss));
}

TEST(EngineConfig, DefaultRunConfigTrainsTheSyntheticShapes) {
    const RunConfig config = default_run_config();
    EXPECT_EQ(config.data.dataset, "synthetic");
    auto train = make_train_dataset(config.data);
    auto test = make_test_dataset(config.data);
    EXPECT_EQ(train->size(), 4096);
    EXPECT_EQ(test->size(), 1024);
    EXPECT_EQ(train->sample_shape().height, config.model.height);
    // The test set is new draws, not the training samples.
    std::vector<float> a(576), b(576), targets(6), present(3);
    std::vector<float*> slots{targets.data(), targets.data() + 1, targets.data() + 2};
    train->load(0, a.data(), slots, present.data());
    test->load(0, b.data(), slots, present.data());
    EXPECT_NE(a, b);
}

// training.precision: auto (the default) and the three maths round-trip
// through the writer; anything else names the key and the choices.
TEST(EngineConfig, PrecisionIsReadWrittenAndChecked) {
    EXPECT_EQ(ladon::Precision::automatic, parse_run_config(kRunConfig, "test.toml").training.precision);
    for (const char* name : {"auto", "fp32", "tf32", "bf16"}) {
        const RunConfig config =
            parse_run_config(spoilt("[training]", std::string("[training]\nprecision = \"") + name + "\""), "test.toml");
        EXPECT_STREQ(name, ladon::precision_name(config.training.precision));
        const std::string written = to_toml(config);
        EXPECT_EQ(config.training.precision, parse_run_config(written, "written.toml").training.precision) << name;
    }
    EXPECT_NE(parse_error(spoilt("[training]", "[training]\nprecision = \"fp16\""))
                  .find("training.precision: unknown value \"fp16\"; expected one of: auto, fp32, tf32, bf16"),
              std::string::npos);
}

}  // namespace
}  // namespace ladon

// Found by fuzz_config (fuzz/README.md): a name holding a control character
// (TOML's "\b" read as a backspace) was written raw, and the written config
// did not parse. Every control character is now written as an escape.
TEST(EngineConfig, NamesWithControlCharactersQuotesAndBackslashesRoundTrip) {
    ladon::RunConfig config = ladon::default_run_config();
    const std::string name = std::string("a\\b\"c\bd\te\nf\x7fg\x01h") + "\xc3\xa9";  // ends in UTF-8 é
    config.model.heads[0].name = name;
    config.model.trunk[0].name = name;
    const std::string text = ladon::to_toml(config);
    EXPECT_EQ(text.find('\b'), std::string::npos) << "a raw backspace in the written TOML";
    const ladon::RunConfig again = ladon::parse_run_config(text, "round trip");
    EXPECT_EQ(again.model.heads[0].name, name);
    EXPECT_EQ(again.model.trunk[0].name, name);
    EXPECT_EQ(ladon::to_toml(again), text);
}

