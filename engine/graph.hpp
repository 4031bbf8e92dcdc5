#pragma once
// A ModelSpec compiled for one batch size: tensors with static shapes, nodes
// in topological order (trunk first, then each head), and the layout of the
// flat parameter and state buffers. Built once; the executor plans memory and
// runs it. Shape errors name the layer, the shape it got and what it needs.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "ladon/model.hpp"

namespace ladon::engine {

struct TensorShape {
    int64_t batch = 1, channels = 1, height = 1, width = 1;
    int64_t per_sample() const { return channels * height * width; }
    int64_t elements() const { return batch * per_sample(); }
    std::string str() const;  // "[N, C, H, W]"
    bool operator==(const TensorShape&) const = default;
};

struct Tensor {
    std::string name;  // the producing layer's name ("input" for the model input)
    TensorShape shape;
    int alias_of = -1;  // flatten: shares storage with this tensor
};

// A named slice of a flat buffer, e.g. "trunk.0.weight" at offset 0.
struct BufferSlice {
    std::string name;
    int64_t offset = 0;
    int64_t count = 0;
    std::vector<int64_t> dims;  // PyTorch's shape for the tensor
    enum class Init { uniform_fan_in, ones, zeros } init = Init::zeros;
    int64_t fan_in = 1;  // uniform_fan_in draws from U(-1/sqrt(fan_in), 1/sqrt(fan_in))
};

struct Node {
    std::string name;          // unique layer name (the user's, or positional)
    std::string parameter_prefix;  // "trunk.3", "heads.left.0"
    LayerSpec spec;
    std::vector<int> inputs;  // tensor indices
    int output = -1;          // tensor index
    int head = -1;            // -1: trunk
    int weight = -1, bias = -1;                 // parameter slice indices
    int running_mean = -1, running_var = -1;    // state slice indices (batch norm)
    ops::Conv2dShape conv;
    ops::Pool2dShape pool;
    ops::DenseShape dense;
    ops::BatchNormShape batch_norm;
};

struct Head {
    HeadSpec spec;
    int output = -1;    // tensor holding the logits [N, width]
    int64_t width = 0;  // logits per sample
};

// Heads whose first layer is a dense layer reading the same tensor. Their
// weights lie contiguously in the parameter buffer as one [out_features,
// in_features] matrix (the heads' rows in order), and their biases as one
// vector, so a backend may run all of them as ONE GEMM.
struct HeadGroup {
    int input = -1;           // tensor (storage) the layers read
    std::vector<int> nodes;   // each head's first dense node, in head order
    int64_t in_features = 0;
    int64_t out_features = 0;  // summed over the heads
    int64_t weight_offset = 0;
    int64_t bias_offset = -1;  // -1: the layers have no bias
};

struct Graph {
    int64_t batch = 0;
    std::vector<Tensor> tensors;  // tensors[0] is the input
    std::vector<Node> nodes;      // topological order
    std::vector<Head> heads;
    std::vector<BufferSlice> parameters;
    int64_t parameter_count = 0;
    std::vector<BufferSlice> state;  // non-trained buffers (batch norm running statistics)
    int64_t state_count = 0;
    std::vector<HeadGroup> head_groups;  // groups of two or more heads
};

Graph build_graph(const ModelSpec& spec, int64_t batch);

}  // namespace ladon::engine
