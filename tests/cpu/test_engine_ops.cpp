// The op registry (engine/ops/): one definition per op, config fields read
// and written from the same description, effective values in written
// configs, op costs, and the fusion pass (engine/fusion.hpp) on the CPU.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <variant>

#include "engine/config_internal.hpp"
#include "engine/fusion.hpp"
#include "engine/graph.hpp"
#include "engine/ops/op.hpp"
#include "ladon/config.hpp"
#include "ladon/error.hpp"

namespace ladon::engine {
namespace {

constexpr OpKind kEveryOp[] = {OpKind::conv2d,  OpKind::max_pool2d, OpKind::avg_pool2d,      OpKind::dense,
                               OpKind::relu,    OpKind::leaky_relu, OpKind::sigmoid,         OpKind::tanh,
                               OpKind::flatten, OpKind::batch_norm, OpKind::dropout,         OpKind::add,
                               OpKind::concat,  OpKind::softmax,    OpKind::global_avg_pool, OpKind::multiply,
                               OpKind::mixture};

std::string config_error(const std::string& text, bool from_checkpoint = false) {
    try {
        if (from_checkpoint)
            parse_checkpoint_config(text, "checkpoint.safetensors (config in metadata)");
        else
            parse_run_config(text, "test.toml");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

std::string one_layer_model(const std::string& layer) {
    return "[model]\ninput = [1, 8, 8]\ntrunk = [\n  " + layer +
           ",\n  { op = \"flatten\" },\n]\n\n[[model.heads]]\nname = \"a\"\nloss = \"mean_squared_error\"\n"
           "layers = [{ op = \"dense\", out_features = 2 }]\n";
}

TEST(EngineOps, EveryOpKindHasOneDefinitionWithAUniqueName) {
    std::set<std::string> names;
    for (OpKind kind : kEveryOp) {
        const OpDefinition& op = op_definition(kind);
        EXPECT_EQ(op.kind, kind) << op.name;
        EXPECT_TRUE(names.insert(op.name).second) << op.name;
        EXPECT_EQ(find_op(op.name), &op);
        EXPECT_STREQ(to_string(kind), op.name);
        EXPECT_NE(op.infer, nullptr) << op.name;
        EXPECT_NE(op.cost, nullptr) << op.name;
        EXPECT_NE(op.cpu_forward, nullptr) << op.name;
        EXPECT_NE(op.cpu_backward, nullptr) << op.name;
    }
    EXPECT_EQ(op_definitions().size(), std::size(kEveryOp));
    EXPECT_EQ(find_op("softmax_but_misspelt"), nullptr);
}

// Every field of every op set to a value other than its default, written and
// read back: the reader and the writer use the same field list, so neither
// can leave one out.
TEST(EngineOps, EveryFieldOfEveryOpIsWrittenAndReadBack) {
    for (const OpDefinition* op : op_definitions()) {
        LayerSpec layer;
        layer.op = op->kind;
        for (const OpField& field : op->fields) {
            std::visit(
                [&](auto member) {
                    using Value = std::decay_t<decltype(layer.*member)>;
                    if constexpr (std::is_same_v<Value, int64_t>) layer.*member = 7;
                    if constexpr (std::is_same_v<Value, std::array<int64_t, 2>>) layer.*member = {3, 2};
                    if constexpr (std::is_same_v<Value, bool>) layer.*member = !(layer.*member);
                    if constexpr (std::is_same_v<Value, float>) layer.*member = 0.375f;
                },
                field.member);
        }
        RunConfig config = default_run_config();
        config.model.trunk = {layer};
        const RunConfig back = parse_run_config(to_toml(config), "written.toml");
        ASSERT_EQ(back.model.trunk.size(), 1u) << op->name;
        const LayerSpec& read = back.model.trunk[0];
        EXPECT_EQ(read.op, layer.op) << op->name;
        EXPECT_EQ(read.out_channels, layer.out_channels) << op->name;
        EXPECT_EQ(read.out_features, layer.out_features) << op->name;
        EXPECT_EQ(read.kernel, layer.kernel) << op->name;
        EXPECT_EQ(read.stride, layer.stride) << op->name;
        EXPECT_EQ(read.padding, layer.padding) << op->name;
        EXPECT_EQ(read.bias, layer.bias) << op->name;
        EXPECT_EQ(read.negative_slope, layer.negative_slope) << op->name;
        EXPECT_EQ(read.probability, layer.probability) << op->name;
        EXPECT_EQ(read.epsilon, layer.epsilon) << op->name;
        EXPECT_EQ(read.momentum, layer.momentum) << op->name;
    }
}

TEST(EngineOps, AKeyOfAnotherOpIsAnUnknownKey) {
    const std::string error = config_error(one_layer_model("{ op = \"relu\", out_channels = 4 }"));
    EXPECT_NE(error.find("test.toml:4: model.trunk[0].out_channels: unknown key"), std::string::npos) << error;
}

TEST(EngineOps, WrittenConfigsShowTheEffectiveStride) {
    RunConfig config = default_run_config();
    LayerSpec conv;
    conv.op = OpKind::conv2d;
    conv.out_channels = 2;
    conv.kernel = {3, 3};
    LayerSpec pool;
    pool.op = OpKind::max_pool2d;
    pool.kernel = {2, 3};
    config.model.trunk = {conv, pool};
    const std::string text = to_toml(config);
    EXPECT_NE(text.find("op = \"conv2d\", out_channels = 2, kernel = [3, 3], stride = [1, 1]"), std::string::npos)
        << text;
    EXPECT_NE(text.find("op = \"max_pool2d\", kernel = [2, 3], stride = [2, 3]"), std::string::npos) << text;
    EXPECT_EQ(text.find("stride = [0"), std::string::npos) << text;
}

TEST(EngineOps, AStrideOfZeroIsAnErrorNamingTheKey) {
    for (const char* layer : {"{ op = \"conv2d\", out_channels = 2, kernel = 3, stride = 0 }",
                              "{ op = \"avg_pool2d\", kernel = 2, stride = [2, 0] }"}) {
        const std::string error = config_error(one_layer_model(layer));
        EXPECT_NE(error.find("test.toml:4: model.trunk[0].stride: expected positive values"), std::string::npos)
            << error;
    }
}

// A kernel of 0 would make a pool's effective stride 0, which a written
// config could not be read back with (the config fuzzer found it).
TEST(EngineOps, AKernelOfZeroIsAnErrorNamingTheKey) {
    for (const char* layer :
         {"{ op = \"max_pool2d\", kernel = 0 }", "{ op = \"conv2d\", out_channels = 2, kernel = [3, 0] }"}) {
        const std::string error = config_error(one_layer_model(layer));
        EXPECT_NE(error.find("test.toml:4: model.trunk[0].kernel: expected positive values"), std::string::npos)
            << error;
    }
}

// Checkpoints written before configs showed effective values hold
// `stride = [0, 0]` for the default: they still load, with that default.
TEST(EngineOps, ACheckpointsZeroStrideStillMeansTheDefault) {
    const std::string text = one_layer_model("{ op = \"max_pool2d\", kernel = 2, stride = [0, 0] }");
    EXPECT_EQ(config_error(text, true), "");
    const RunConfig config = parse_checkpoint_config(text, "checkpoint");
    const Graph graph = build_graph(config.model, 2);
    EXPECT_EQ(graph.nodes[0].pool.stride_height, 2);
    EXPECT_EQ(graph.nodes[0].pool.stride_width, 2);
    EXPECT_NE(to_toml(config).find("kernel = [2, 2], stride = [2, 2]"), std::string::npos);
}

TEST(EngineOps, CostsCountMultiplyAddsAsTwoFlops) {
    ModelSpec spec;
    spec.channels = 3;
    spec.height = 9;
    spec.width = 7;
    LayerSequence trunk(spec.trunk);
    trunk.conv2d(5, 3, 1, 1).max_pool2d(2).flatten();
    spec.heads.push_back({});
    spec.heads[0].name = "a";
    LayerSequence(spec.heads[0].layers).dense(4);
    const Graph graph = build_graph(spec, 2);
    const OpCost conv = op_definition(OpKind::conv2d).cost(graph, graph.nodes[0]);
    EXPECT_EQ(conv.forward_flops, 2.0 * (2 * 5 * 9 * 7) * (3 * 3 * 3));
    EXPECT_EQ(conv.backward_flops, 2 * conv.forward_flops);
    EXPECT_EQ(conv.forward_bytes, 4.0 * (2 * 3 * 9 * 7 + 5 * 3 * 3 * 3 + 2 * 5 * 9 * 7));
    const OpCost dense = op_definition(OpKind::dense).cost(graph, graph.nodes[3]);
    EXPECT_EQ(dense.forward_flops, 2.0 * 2 * (5 * 4 * 3) * 4);
}

Graph graph_of(void (*trunk)(LayerSequence&), int heads = 1) {
    ModelSpec spec;
    spec.channels = 2;
    spec.height = 6;
    spec.width = 6;
    LayerSequence sequence(spec.trunk);
    trunk(sequence);
    for (int h = 0; h < heads; ++h) {
        HeadSpec& head = spec.heads.emplace_back();
        head.name = "h";
        head.name += std::to_string(h);  // not "h" + ...: g++ 12 -Wrestrict false positive
        LayerSequence(head.layers).dense(2 + h);
    }
    return build_graph(spec, 2);
}

TEST(EngineFusion, AnActivationAfterItsOnlyProducerRunsInTheEpilogue) {
    const Graph graph = graph_of([](LayerSequence& t) { t.conv2d(3, 3).relu().flatten().dense(4).tanh(); });
    const FusionPlan plan = plan_fusions(graph);
    EXPECT_EQ(plan.epilogue, (std::vector<int>{1, -1, -1, 4, -1, -1}));
    EXPECT_EQ(plan.fused_activation, (std::vector<bool>{false, true, false, false, true, false}));
}

TEST(EngineFusion, NoEpilogueWhereTheInputIsReadTwiceOrTheSlopeIsZero) {
    const Graph read_twice = graph_of([](LayerSequence& t) {
        t.conv2d(3, 3).named("c").relu().from({"c"}).sigmoid().named("s").add({"trunk.1", "s"});
    });
    EXPECT_EQ(plan_fusions(read_twice).epilogue[0], -1);
    const Graph zero_slope = graph_of([](LayerSequence& t) { t.conv2d(3, 3).leaky_relu(0.0f); });
    EXPECT_EQ(plan_fusions(zero_slope).epilogue[0], -1);
    const Graph pool = graph_of([](LayerSequence& t) { t.max_pool2d(2).relu(); });
    EXPECT_EQ(plan_fusions(pool).epilogue[0], -1);
}

TEST(EngineFusion, HeadsWhoseFirstDenseLayersShareAnInputFormOneGroup) {
    const Graph graph = graph_of([](LayerSequence& t) { t.conv2d(3, 3).flatten(); }, 3);
    const FusionPlan plan = plan_fusions(graph);
    ASSERT_EQ(plan.group_heads.size(), 1u);
    EXPECT_EQ(plan.group_heads[0], (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(plan.group_of_node, (std::vector<int>{-1, -1, 0, 0, 0}));
    EXPECT_EQ(plan.epilogue, (std::vector<int>{-1, -1, -1, -1, -1}));
}

}  // namespace
}  // namespace ladon::engine

namespace ladon::engine {
namespace {

// The gating ops from a config file: a squeeze-and-excitation block and a
// head mixing two experts, read, built, written and read back.
TEST(EngineOps, GatingOpsReadFromAConfigAndWrittenBack) {
    const std::string text = R"([model]
input = [2, 6, 6]
trunk = [
  { op = "conv2d", out_channels = 4, kernel = 3, name = "features" },
  { op = "global_avg_pool" },
  { op = "dense", out_features = 4 },
  { op = "sigmoid", name = "excite" },
  { op = "multiply", inputs = ["excite", "features"] },
  { op = "softmax" },
  { op = "flatten", name = "shared" },
  { op = "dense", out_features = 3, name = "e0" },
  { op = "dense", out_features = 3, inputs = ["shared"], name = "e1" },
]

[[model.heads]]
name = "a"
loss = "mean_squared_error"
input = "shared"
layers = [
  { op = "dense", out_features = 2 },
  { op = "softmax", name = "gate" },
  { op = "mixture", inputs = ["gate", "e0", "e1"] },
  { op = "dense", out_features = 1 },
]
)";
    const RunConfig config = parse_run_config(text, "gated.toml");
    const Graph graph = build_graph(config.model, 2);
    EXPECT_EQ(graph.nodes[4].spec.op, OpKind::multiply);
    EXPECT_EQ(graph.tensors[graph.nodes[4].output].shape.str(), "[2, 4, 4, 4]");
    const RunConfig back = parse_run_config(to_toml(config), "written.toml");
    ASSERT_EQ(back.model.heads[0].layers.size(), 4u);
    EXPECT_EQ(back.model.heads[0].layers[2].op, OpKind::mixture);
    EXPECT_EQ(back.model.heads[0].layers[2].inputs, (std::vector<std::string>{"gate", "e0", "e1"}));
    EXPECT_EQ(to_toml(back), to_toml(config));
}

TEST(EngineOps, AMixtureWithoutExpertsIsAnErrorNamingTheLayer) {
    const RunConfig config =
        parse_run_config(one_layer_model("{ op = \"mixture\", inputs = [\"input\"] }"), "test.toml");
    std::string error;
    try {
        build_graph(config.model, 2);
    } catch (const Error& e) {
        error = e.what();
    }
    EXPECT_NE(error.find("(mixture)"), std::string::npos) << error;
    EXPECT_NE(error.find("needs at least two inputs, got 1"), std::string::npos) << error;
}

}  // namespace
}  // namespace ladon::engine
