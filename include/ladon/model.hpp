#pragma once
// Describing a multi-task model: a trunk of layers and named heads. Each head
// reads one trunk layer (the last by default), has its own layers, loss and
// weight. Layers name their inputs, so add and concat make DAGs; a layer with
// no inputs named reads the layer before it (or the model input / the head's
// input for a first layer). The same description comes from the C++ builder
// below or from a TOML model file (ladon/config.hpp).
#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace ladon {

enum class OpKind {
    conv2d,
    max_pool2d,
    avg_pool2d,
    dense,  // reads its input flattened to [N, C*H*W], like flatten + nn.Linear
    relu,
    leaky_relu,
    sigmoid,
    tanh,
    flatten,
    batch_norm,
    dropout,
    add,              // elementwise sum of two or more inputs of one shape
    concat,           // along channels; inputs agree on N, H, W
    softmax,          // over channels (a dense layer's features)
    global_avg_pool,  // [N, C, H, W] to [N, C]
    multiply,         // two inputs of one shape, or a [N, C] gate times [N, C, H, W]
    mixture,          // gate [N, E] and E experts of one shape: sum_e gate[:, e] * expert_e
};

enum class Loss {
    softmax_cross_entropy,
    sigmoid_binary_cross_entropy,
    mean_squared_error,
    smooth_l1,
};

struct LayerSpec {
    OpKind op = OpKind::relu;
    std::string name;                 // unique in the model; empty: named by position
    std::vector<std::string> inputs;  // empty: the previous layer
    int64_t out_channels = 0;         // conv2d
    int64_t out_features = 0;         // dense
    std::array<int64_t, 2> kernel{1, 1};
    std::array<int64_t, 2> stride{0, 0};  // 0: 1 for conv2d, the kernel size for pools
    std::array<int64_t, 2> padding{0, 0};
    bool bias = true;
    float negative_slope = 0.01f;  // leaky_relu
    float probability = 0.5f;      // dropout
    float epsilon = 1e-5f;         // batch_norm
    float momentum = 0.1f;         // batch_norm
};

struct HeadSpec {
    std::string name;   // also the task it learns from the dataset
    std::string input;  // a trunk layer's name; empty: the trunk's last layer
    std::vector<LayerSpec> layers;
    Loss loss = Loss::softmax_cross_entropy;
    float weight = 1.0f;
    float label_smoothing = 0.0f;  // softmax cross-entropy
    float beta = 1.0f;             // smooth L1
};

struct ModelSpec {
    int64_t channels = 1;
    int64_t height = 1;
    int64_t width = 1;
    std::vector<LayerSpec> trunk;
    std::vector<HeadSpec> heads;
};

const char* to_string(OpKind op);
const char* to_string(Loss loss);

// Appends layers to a list; shared by the trunk and the heads.
class LayerSequence {
public:
    explicit LayerSequence(std::vector<LayerSpec>& layers) : layers_(&layers) {}
    LayerSequence& conv2d(int64_t out_channels, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
                          bool bias = true);
    LayerSequence& max_pool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0);
    LayerSequence& avg_pool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0);
    LayerSequence& dense(int64_t out_features, bool bias = true);
    LayerSequence& relu();
    LayerSequence& leaky_relu(float negative_slope = 0.01f);
    LayerSequence& sigmoid();
    LayerSequence& tanh();
    LayerSequence& flatten();
    LayerSequence& batch_norm(float epsilon = 1e-5f, float momentum = 0.1f);
    LayerSequence& dropout(float probability);
    LayerSequence& add(std::vector<std::string> inputs);
    LayerSequence& concat(std::vector<std::string> inputs);
    LayerSequence& softmax();
    LayerSequence& global_avg_pool();
    LayerSequence& multiply(std::vector<std::string> inputs);
    // inputs: the gate, then the experts.
    LayerSequence& mixture(std::vector<std::string> inputs);
    LayerSequence& layer(LayerSpec spec);
    // Names the layer just added, so later layers and heads can read it.
    LayerSequence& named(std::string name);
    // The next layer reads these instead of the layer before it.
    LayerSequence& from(std::vector<std::string> inputs);

private:
    std::vector<LayerSpec>* layers_;
    std::vector<std::string> next_inputs_;
};

class ModelBuilder {
public:
    ModelBuilder(int64_t channels, int64_t height, int64_t width);
    ModelBuilder(const ModelBuilder&) = delete;  // the sequences point into it
    ModelBuilder& operator=(const ModelBuilder&) = delete;
    LayerSequence& trunk() { return trunk_; }
    // Adds a head; configure it, then add its layers through the returned sequence.
    LayerSequence& head(std::string name, Loss loss, float weight = 1.0f, std::string input = {});
    HeadSpec& last_head() { return heads_.back(); }
    ModelSpec build() const;

private:
    ModelSpec spec_;
    LayerSequence trunk_;
    std::deque<HeadSpec> heads_;  // deques: growing them keeps references valid
    std::deque<LayerSequence> head_sequences_;
};

}  // namespace ladon
