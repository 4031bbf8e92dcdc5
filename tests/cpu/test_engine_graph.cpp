// Shape inference, parameter layout and model errors of engine::build_graph.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cpu/engine_test_support.hpp"
#include "engine/graph.hpp"
#include "ladon/error.hpp"
#include "ladon/model.hpp"

namespace ladon::engine {
namespace {

// The message of the ladon::Error that build_graph(spec, batch) throws ("" if none).
std::string graph_error(const ModelSpec& spec, int64_t batch = 2) {
    try {
        build_graph(spec, batch);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

const Tensor& tensor_named(const Graph& graph, const std::string& name) {
    for (const Tensor& tensor : graph.tensors)
        if (tensor.name == name) return tensor;
    throw std::runtime_error("no tensor named " + name);
}

const BufferSlice& parameter_named(const Graph& graph, const std::string& name) {
    for (const BufferSlice& slice : graph.parameters)
        if (slice.name == name) return slice;
    throw std::runtime_error("no parameter named " + name);
}

void expect_shape(const Tensor& tensor, int64_t n, int64_t c, int64_t h, int64_t w) {
    EXPECT_EQ(tensor.shape.batch, n) << tensor.name;
    EXPECT_EQ(tensor.shape.channels, c) << tensor.name;
    EXPECT_EQ(tensor.shape.height, h) << tensor.name;
    EXPECT_EQ(tensor.shape.width, w) << tensor.name;
}

// input [2, 13, 11]
//   trunk.0 conv 4, 3x3, stride 2, pad 1 -> [4, 7, 6]
//   trunk.1 relu
//   trunk.2 max pool 2                   -> [4, 3, 3]  "pooled"
//   trunk.3 avg pool 4, stride 4, pad 1 on the input -> [2, 3, 3]  "coarse"
//   trunk.4 concat(pooled, coarse)       -> [6, 3, 3]  "joined"
//   trunk.5 flatten                      -> [54, 1, 1]  (a view of "joined")
//   trunk.6 dense 7                      -> [7, 1, 1]
//   trunk.7 batch norm                   -> [7, 1, 1]
// heads: left = dense 5 on the trunk's end; right = dense 2 straight on "pooled" (flattened 36).
ModelSpec small_model() {
    ModelBuilder builder(2, 13, 11);
    builder.trunk()
        .conv2d(4, 3, 2, 1)
        .relu()
        .max_pool2d(2)
        .named("pooled")
        .from({"input"})
        .avg_pool2d(4, 4, 1)
        .named("coarse")
        .concat({"pooled", "coarse"})
        .named("joined")
        .flatten()
        .named("flat")
        .dense(7)
        .batch_norm();
    builder.head("left", Loss::softmax_cross_entropy).dense(5);
    builder.head("right", Loss::smooth_l1, 0.5f, "pooled").dense(2, false);
    return builder.build();
}

TEST(EngineGraph, InfersConvPoolConcatFlattenAndDenseShapes) {
    const Graph graph = build_graph(small_model(), 3);
    EXPECT_EQ(graph.batch, 3);
    expect_shape(graph.tensors[0], 3, 2, 13, 11);
    EXPECT_EQ(graph.tensors[0].name, "input");
    expect_shape(tensor_named(graph, "trunk.0"), 3, 4, 7, 6);  // (13+2-3)/2+1, (11+2-3)/2+1
    expect_shape(tensor_named(graph, "trunk.1"), 3, 4, 7, 6);
    expect_shape(tensor_named(graph, "pooled"), 3, 4, 3, 3);  // floor((7-2)/2)+1, (6-2)/2+1
    expect_shape(tensor_named(graph, "coarse"), 3, 2, 3, 3);  // (13+2-4)/4+1, (11+2-4)/4+1
    expect_shape(tensor_named(graph, "joined"), 3, 6, 3, 3);  // 4 + 2 channels
    expect_shape(tensor_named(graph, "flat"), 3, 54, 1, 1);
    expect_shape(tensor_named(graph, "trunk.6"), 3, 7, 1, 1);
    expect_shape(tensor_named(graph, "heads.left.0"), 3, 5, 1, 1);
    expect_shape(tensor_named(graph, "heads.right.0"), 3, 2, 1, 1);

    ASSERT_EQ(graph.heads.size(), 2u);
    EXPECT_EQ(graph.heads[0].width, 5);
    EXPECT_EQ(graph.heads[1].width, 2);
    EXPECT_EQ(graph.tensors[graph.heads[1].output].name, "heads.right.0");

    // The conv and pool shape structs handed to the kernels agree with the tensors.
    const Node& conv = graph.nodes[0];
    EXPECT_EQ(conv.conv.stride_height, 2);
    EXPECT_EQ(conv.conv.pad_width, 1);
    EXPECT_EQ(conv.conv.out_height(), 7);
    EXPECT_EQ(conv.conv.out_width(), 6);
    const Node& coarse = graph.nodes[3];
    EXPECT_EQ(coarse.pool.stride_height, 4);
    EXPECT_EQ(graph.nodes[2].pool.stride_width, 2);  // a pool's stride defaults to its kernel
    EXPECT_EQ(graph.nodes[6].dense.in_features, 54);
    EXPECT_EQ(graph.nodes[6].dense.out_features, 7);
    EXPECT_EQ(graph.nodes[8].head, 0);                // heads.left.0
    EXPECT_EQ(graph.nodes[9].dense.in_features, 36);  // dense flattens [4, 3, 3]
    EXPECT_EQ(graph.nodes[7].batch_norm.channels, 7);
    EXPECT_EQ(graph.nodes[7].batch_norm.spatial, 1);
}

TEST(EngineGraph, InputsDefaultToThePreviousLayerAndFromRedirects) {
    const Graph graph = build_graph(small_model(), 3);
    auto input_names = [&](std::size_t node) {
        std::vector<std::string> names;
        for (int t : graph.nodes[node].inputs) names.push_back(graph.tensors[t].name);
        return names;
    };
    EXPECT_EQ(input_names(0), std::vector<std::string>{"input"});
    EXPECT_EQ(input_names(1), std::vector<std::string>{"trunk.0"});
    EXPECT_EQ(input_names(3), std::vector<std::string>{"input"});
    EXPECT_EQ(input_names(4), (std::vector<std::string>{"pooled", "coarse"}));
    EXPECT_EQ(input_names(8), std::vector<std::string>{"trunk.7"});  // a head reads the trunk's last layer
    EXPECT_EQ(input_names(9), std::vector<std::string>{"pooled"});
}

TEST(EngineGraph, FlattenIsAViewOfItsInputAndChainedFlattensShareTheRoot) {
    ModelBuilder builder(3, 4, 5);
    builder.trunk().conv2d(2, 1).flatten().named("f1").flatten().named("f2").dense(3);
    builder.head("out", Loss::mean_squared_error).dense(1);
    const Graph graph = build_graph(builder.build(), 2);
    const Tensor& f1 = tensor_named(graph, "f1");
    const Tensor& f2 = tensor_named(graph, "f2");
    EXPECT_EQ(f1.alias_of, 1);  // trunk.0's output
    EXPECT_EQ(f2.alias_of, 1);  // not f1: aliases always point at storage
    expect_shape(f2, 2, 40, 1, 1);
    EXPECT_EQ(tensor_named(graph, "trunk.0").alias_of, -1);
}

TEST(EngineGraph, ParametersHavePyTorchNamesDimsAndContiguousOffsets) {
    const Graph graph = build_graph(small_model(), 3);
    const std::vector<std::string> names{"trunk.0.weight",      "trunk.0.bias",      "trunk.6.weight",
                                         "trunk.6.bias",        "trunk.7.weight",    "trunk.7.bias",
                                         "heads.left.0.weight", "heads.left.0.bias", "heads.right.0.weight"};
    ASSERT_EQ(graph.parameters.size(), names.size());
    int64_t offset = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
        const BufferSlice& slice = graph.parameters[i];
        EXPECT_EQ(slice.name, names[i]);
        EXPECT_EQ(slice.offset, offset) << slice.name;
        int64_t count = 1;
        for (int64_t d : slice.dims) count *= d;
        EXPECT_EQ(slice.count, count) << slice.name;
        offset += slice.count;
    }
    EXPECT_EQ(graph.parameter_count, offset);
    EXPECT_EQ(graph.parameter_count, 4 * 2 * 9 + 4 + 7 * 54 + 7 + 7 + 7 + 5 * 7 + 5 + 2 * 36);

    EXPECT_EQ(parameter_named(graph, "trunk.0.weight").dims, (std::vector<int64_t>{4, 2, 3, 3}));  // OIHW
    EXPECT_EQ(parameter_named(graph, "trunk.0.weight").fan_in, 18);
    EXPECT_EQ(parameter_named(graph, "trunk.0.bias").dims, std::vector<int64_t>{4});
    EXPECT_EQ(parameter_named(graph, "trunk.6.weight").dims, (std::vector<int64_t>{7, 54}));  // [out, in]
    EXPECT_EQ(parameter_named(graph, "heads.left.0.bias").dims, std::vector<int64_t>{5});
    EXPECT_EQ(parameter_named(graph, "heads.right.0.weight").dims, (std::vector<int64_t>{2, 36}));
    EXPECT_EQ(parameter_named(graph, "trunk.7.weight").init, BufferSlice::Init::ones);
    EXPECT_EQ(parameter_named(graph, "trunk.7.bias").init, BufferSlice::Init::zeros);

    // Batch norm's running statistics are state, not trained parameters.
    ASSERT_EQ(graph.state.size(), 2u);
    EXPECT_EQ(graph.state[0].name, "trunk.7.running_mean");
    EXPECT_EQ(graph.state[1].name, "trunk.7.running_var");
    EXPECT_EQ(graph.state[1].offset, 7);
    EXPECT_EQ(graph.state_count, 14);
}

TEST(EngineGraph, ConvKernelLargerThanItsInputNamesLayerShapeAndNeed) {
    ModelBuilder builder(1, 4, 6);
    builder.trunk().conv2d(2, 5).named("big");
    builder.head("out", Loss::mean_squared_error).dense(1);
    const std::string message = graph_error(builder.build());
    EXPECT_NE(message.find("'big'"), std::string::npos) << message;
    EXPECT_NE(message.find("conv2d"), std::string::npos) << message;
    EXPECT_NE(message.find("[2, 1, 4, 6]"), std::string::npos) << message;
    EXPECT_NE(message.find("height >= 5"), std::string::npos) << message;
}

TEST(EngineGraph, PaddingLetsAKernelCoverASmallerInput) {
    ModelBuilder builder(1, 4, 4);
    builder.trunk().conv2d(2, 5, 1, 1);  // 4 + 2 >= 5
    builder.head("out", Loss::mean_squared_error).dense(1);
    const Graph graph = build_graph(builder.build(), 2);
    EXPECT_EQ(graph.tensors[1].shape.height, 2);
}

TEST(EngineGraph, AddOfMismatchedShapesNamesBothInputsAndTheirShapes) {
    ModelBuilder builder(1, 8, 8);
    builder.trunk()
        .conv2d(3, 3, 1, 1)
        .named("same")
        .from({"input"})
        .conv2d(3, 3)
        .named("smaller")
        .add({"same", "smaller"})
        .named("sum");
    builder.head("out", Loss::mean_squared_error).dense(1);
    const std::string message = graph_error(builder.build());
    EXPECT_NE(message.find("'sum' (add)"), std::string::npos) << message;
    EXPECT_NE(message.find("'same' is [2, 3, 8, 8]"), std::string::npos) << message;
    EXPECT_NE(message.find("'smaller' is [2, 3, 6, 6]"), std::string::npos) << message;
    EXPECT_NE(message.find("one shape"), std::string::npos) << message;
}

TEST(EngineGraph, ConcatOfDifferentHeightAndWidthNamesTheShapes) {
    ModelBuilder builder(1, 8, 8);
    builder.trunk().conv2d(3, 1).named("a").from({"input"}).max_pool2d(2).named("b").concat({"a", "b"}).named("cat");
    builder.head("out", Loss::mean_squared_error).dense(1);
    const std::string message = graph_error(builder.build());
    EXPECT_NE(message.find("'cat' (concat)"), std::string::npos) << message;
    EXPECT_NE(message.find("equal height and width"), std::string::npos) << message;
    EXPECT_NE(message.find("[2, 3, 8, 8]"), std::string::npos) << message;
    EXPECT_NE(message.find("[2, 1, 4, 4]"), std::string::npos) << message;
}

TEST(EngineGraph, ConcatSumsChannelsOfInputsThatAgreeOnHeightAndWidth) {
    ModelBuilder builder(1, 8, 8);
    builder.trunk().conv2d(3, 1).named("a").conv2d(5, 3, 1, 1).named("b").concat({"a", "b", "input"});
    builder.head("out", Loss::mean_squared_error).dense(1);
    const Graph graph = build_graph(builder.build(), 2);
    expect_shape(graph.tensors[3], 2, 9, 8, 8);
}

TEST(EngineGraph, UnknownInputNameIsAnErrorNamingReaderAndName) {
    ModelBuilder builder(1, 8, 8);
    builder.trunk().conv2d(3, 1).named("a").add({"a", "ghost"}).named("sum");
    builder.head("out", Loss::mean_squared_error).dense(1);
    const std::string message = graph_error(builder.build());
    EXPECT_NE(message.find("'sum'"), std::string::npos) << message;
    EXPECT_NE(message.find("'ghost'"), std::string::npos) << message;
    EXPECT_NE(message.find("not the input or an earlier layer"), std::string::npos) << message;
}

TEST(EngineGraph, LayersMayOnlyReadEarlierLayers) {
    ModelBuilder builder(1, 8, 8);
    builder.trunk().from({"later"}).relu().conv2d(3, 1).named("later");
    builder.head("out", Loss::mean_squared_error).dense(1);
    EXPECT_NE(graph_error(builder.build()).find("'later'"), std::string::npos);
}

TEST(EngineGraph, HeadReadingAnUnknownLayerIsAnError) {
    ModelBuilder builder(1, 8, 8);
    builder.trunk().conv2d(3, 1);
    builder.head("out", Loss::mean_squared_error, 1.0f, "nowhere").dense(1);
    const std::string message = graph_error(builder.build());
    EXPECT_NE(message.find("head 'out'"), std::string::npos) << message;
    EXPECT_NE(message.find("'nowhere'"), std::string::npos) << message;
}

TEST(EngineGraph, DuplicateLayerNameIsAnError) {
    ModelBuilder builder(1, 8, 8);
    builder.trunk().conv2d(3, 1).named("twice").relu().named("twice");
    builder.head("out", Loss::mean_squared_error).dense(1);
    const std::string message = graph_error(builder.build());
    EXPECT_NE(message.find("two layers are named 'twice'"), std::string::npos) << message;
}

TEST(EngineGraph, LayerNamedLikeAnotherLayersPositionIsAnError) {
    ModelBuilder builder(1, 8, 8);
    builder.trunk().conv2d(3, 1).relu().named("trunk.0");
    builder.head("out", Loss::mean_squared_error).dense(1);
    EXPECT_NE(graph_error(builder.build()).find("'trunk.0'"), std::string::npos);
}

TEST(EngineGraph, HeadWithoutLayersIsAnErrorNamingTheHead) {
    ModelSpec spec;
    spec.channels = 1;
    spec.height = spec.width = 4;
    HeadSpec head;
    head.name = "empty";
    spec.heads.push_back(head);
    const std::string message = graph_error(spec);
    EXPECT_NE(message.find("head 'empty' has no layers"), std::string::npos) << message;
}

TEST(EngineGraph, ModelWithoutHeadsIsAnError) {
    ModelBuilder builder(1, 8, 8);
    builder.trunk().conv2d(3, 1);
    const std::string message = graph_error(builder.build());
    EXPECT_NE(message.find("no heads"), std::string::npos) << message;
}

TEST(EngineGraph, TwoHeadsWithOneNameIsAnError) {
    ModelBuilder builder(1, 8, 8);
    builder.head("same", Loss::mean_squared_error).dense(1);
    builder.head("same", Loss::mean_squared_error).dense(1);
    EXPECT_NE(graph_error(builder.build()).find("two heads are named 'same'"), std::string::npos);
}

TEST(EngineGraph, TwoHeadsWhoseLogitsShareStorageAreAnError) {
    // The loss writes each head's logit gradient into its output's slot; two
    // flatten-only heads on one layer would share that slot.
    ModelBuilder builder(1, 4, 4);
    builder.trunk().dense(3).named("features");
    builder.head("a", Loss::mean_squared_error).flatten();
    builder.head("b", Loss::smooth_l1).flatten();
    const std::string message = graph_error(builder.build());
    EXPECT_NE(message.find("heads 'a' and 'b' both output the values of 'features'"), std::string::npos) << message;

    ModelBuilder one(1, 4, 4);  // one flatten-only head beside a head with its own layer is fine
    one.trunk().dense(3).named("features");
    one.head("a", Loss::mean_squared_error).flatten();
    one.head("b", Loss::smooth_l1).dense(3);
    EXPECT_EQ(graph_error(one.build()), "");
}

TEST(EngineGraph, AddWithOneInputAndReluWithTwoAreErrors) {
    ModelBuilder one(1, 8, 8);
    one.trunk().conv2d(3, 1).named("a").add({"a"}).named("lonely");
    one.head("out", Loss::mean_squared_error).dense(1);
    EXPECT_NE(graph_error(one.build()).find("'lonely' (add) needs at least two inputs, got 1"), std::string::npos);

    ModelBuilder two(1, 8, 8);
    two.trunk().conv2d(3, 1).named("a").from({"a", "input"}).relu().named("r");
    two.head("out", Loss::mean_squared_error).dense(1);
    EXPECT_NE(graph_error(two.build()).find("'r' (relu) takes one input, got 2"), std::string::npos);
}

TEST(EngineGraph, NonPositiveSizesAreErrors) {
    ModelBuilder conv(1, 8, 8);
    conv.trunk().conv2d(0, 3);
    conv.head("out", Loss::mean_squared_error).dense(1);
    EXPECT_NE(graph_error(conv.build()).find("out_channels > 0, got 0"), std::string::npos);

    ModelBuilder dense(1, 8, 8);
    dense.head("out", Loss::mean_squared_error).dense(-1);
    EXPECT_NE(graph_error(dense.build()).find("out_features > 0, got -1"), std::string::npos);

    ModelBuilder stride(1, 8, 8);
    stride.trunk().conv2d(2, 3, -1);
    stride.head("out", Loss::mean_squared_error).dense(1);
    EXPECT_NE(graph_error(stride.build()).find("positive stride"), std::string::npos);

    ModelBuilder input(0, 8, 8);
    input.head("out", Loss::mean_squared_error).dense(1);
    EXPECT_NE(graph_error(input.build()).find("input shape must be positive"), std::string::npos);

    ModelBuilder ok(1, 8, 8);
    ok.head("out", Loss::mean_squared_error).dense(1);
    EXPECT_NE(graph_error(ok.build(), 0).find("batch size must be positive, got 0"), std::string::npos);
}

TEST(EngineGraph, BatchNormNeedsMoreThanOneValuePerChannel) {
    ModelBuilder builder(1, 8, 8);
    builder.trunk().dense(4).batch_norm().named("bn");
    builder.head("out", Loss::mean_squared_error).dense(1);
    const std::string message = graph_error(builder.build(), 1);
    EXPECT_NE(message.find("'bn'"), std::string::npos) << message;
    EXPECT_NE(message.find("[1, 4, 1, 1]"), std::string::npos) << message;
    EXPECT_EQ(graph_error(builder.build(), 2), "");
}

}  // namespace
}  // namespace ladon::engine

namespace ladon::engine {
namespace {

TEST(EngineGraph, GatingOpsInferTheirShapes) {
    const Graph graph = build_graph(testing::gated_model(), 2);
    auto tensor = [&](const char* name) -> const Tensor& { return tensor_named(graph, name); };
    expect_shape(tensor("trunk.2"), 2, 4, 1, 1);  // global_avg_pool of [4, 9, 7]
    expect_shape(tensor("se"), 2, 4, 9, 7);       // the [N, C] gate broadcast over H and W
    expect_shape(tensor("attention"), 2, 4, 9, 7);
    expect_shape(tensor("trunk.7"), 2, 4, 9, 7);  // equal shapes
    expect_shape(tensor("heads.cls.2"), 2, 6, 1, 1);  // the mixture has its experts' shape
}

TEST(EngineGraph, MultiplyOfUnrelatedShapesNamesBothAndWhatItTakes) {
    ModelBuilder builder(1, 8, 8);
    builder.trunk().conv2d(3, 1).named("a").from({"input"}).conv2d(2, 1).named("b").multiply({"a", "b"}).named("m");
    builder.head("out", Loss::mean_squared_error).dense(1);
    const std::string message = graph_error(builder.build());
    EXPECT_NE(message.find("'m' (multiply)"), std::string::npos) << message;
    EXPECT_NE(message.find("'a' is [2, 3, 8, 8] but 'b' is [2, 2, 8, 8]"), std::string::npos) << message;
    EXPECT_NE(message.find("[N, C] gate"), std::string::npos) << message;
}

TEST(EngineGraph, MixtureNeedsOneGateColumnPerExpertAndExpertsOfOneShape) {
    auto model = [](int gate_width, int second_expert_width) {
        ModelBuilder builder(1, 4, 4);
        builder.trunk()
            .flatten()
            .named("x")
            .dense(5)
            .named("e0")
            .from({"x"})
            .dense(second_expert_width)
            .named("e1")
            .from({"x"})
            .dense(gate_width)
            .softmax()
            .named("gate")
            .mixture({"gate", "e0", "e1"})
            .named("mix");
        builder.head("out", Loss::mean_squared_error).dense(1);
        return builder.build();
    };
    EXPECT_EQ(graph_error(model(2, 5)), "");
    const std::string gate = graph_error(model(3, 5));
    EXPECT_NE(gate.find("'mix' (mixture)"), std::string::npos) << gate;
    EXPECT_NE(gate.find("the gate, to be [N, E] for its E = 2 experts; 'gate' is [2, 3, 1, 1]"), std::string::npos)
        << gate;
    const std::string experts = graph_error(model(2, 4));
    EXPECT_NE(experts.find("experts of one shape"), std::string::npos) << experts;
    EXPECT_NE(experts.find("'e0' is [2, 5, 1, 1] but 'e1' is [2, 4, 1, 1]"), std::string::npos) << experts;
}

}  // namespace
}  // namespace ladon::engine
