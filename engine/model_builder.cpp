// The C++ builder for ModelSpec, and names of the enums.
#include <utility>

#include "engine/ops/op.hpp"
#include "ladon/error.hpp"
#include "ladon/model.hpp"

namespace ladon {

const char* to_string(OpKind op) { return engine::op_definition(op).name; }

const char* to_string(Loss loss) {
    switch (loss) {
        case Loss::softmax_cross_entropy: return "softmax_cross_entropy";
        case Loss::sigmoid_binary_cross_entropy: return "sigmoid_binary_cross_entropy";
        case Loss::mean_squared_error: return "mean_squared_error";
        case Loss::smooth_l1: return "smooth_l1";
    }
    return "?";
}

LayerSequence& LayerSequence::layer(LayerSpec spec) {
    if (spec.inputs.empty()) spec.inputs = std::exchange(next_inputs_, {});
    next_inputs_.clear();
    layers_->push_back(std::move(spec));
    return *this;
}

namespace {
LayerSpec window_layer(OpKind op, int64_t kernel, int64_t stride, int64_t padding) {
    LayerSpec spec;
    spec.op = op;
    spec.kernel = {kernel, kernel};
    spec.stride = {stride, stride};
    spec.padding = {padding, padding};
    return spec;
}
LayerSpec plain_layer(OpKind op) {
    LayerSpec spec;
    spec.op = op;
    return spec;
}
}  // namespace

LayerSequence& LayerSequence::conv2d(int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding, bool bias) {
    LayerSpec spec = window_layer(OpKind::conv2d, kernel, stride, padding);
    spec.out_channels = out_channels;
    spec.bias = bias;
    return layer(std::move(spec));
}
LayerSequence& LayerSequence::max_pool2d(int64_t kernel, int64_t stride, int64_t padding) {
    return layer(window_layer(OpKind::max_pool2d, kernel, stride, padding));
}
LayerSequence& LayerSequence::avg_pool2d(int64_t kernel, int64_t stride, int64_t padding) {
    return layer(window_layer(OpKind::avg_pool2d, kernel, stride, padding));
}
LayerSequence& LayerSequence::dense(int64_t out_features, bool bias) {
    LayerSpec spec = plain_layer(OpKind::dense);
    spec.out_features = out_features;
    spec.bias = bias;
    return layer(std::move(spec));
}
LayerSequence& LayerSequence::relu() { return layer(plain_layer(OpKind::relu)); }
LayerSequence& LayerSequence::leaky_relu(float negative_slope) {
    LayerSpec spec = plain_layer(OpKind::leaky_relu);
    spec.negative_slope = negative_slope;
    return layer(std::move(spec));
}
LayerSequence& LayerSequence::sigmoid() { return layer(plain_layer(OpKind::sigmoid)); }
LayerSequence& LayerSequence::tanh() { return layer(plain_layer(OpKind::tanh)); }
LayerSequence& LayerSequence::flatten() { return layer(plain_layer(OpKind::flatten)); }
LayerSequence& LayerSequence::batch_norm(float epsilon, float momentum) {
    LayerSpec spec = plain_layer(OpKind::batch_norm);
    spec.epsilon = epsilon;
    spec.momentum = momentum;
    return layer(std::move(spec));
}
LayerSequence& LayerSequence::dropout(float probability) {
    LayerSpec spec = plain_layer(OpKind::dropout);
    spec.probability = probability;
    return layer(std::move(spec));
}
LayerSequence& LayerSequence::add(std::vector<std::string> inputs) {
    LayerSpec spec = plain_layer(OpKind::add);
    spec.inputs = std::move(inputs);
    return layer(std::move(spec));
}
LayerSequence& LayerSequence::concat(std::vector<std::string> inputs) {
    LayerSpec spec = plain_layer(OpKind::concat);
    spec.inputs = std::move(inputs);
    return layer(std::move(spec));
}
LayerSequence& LayerSequence::softmax() { return layer(plain_layer(OpKind::softmax)); }
LayerSequence& LayerSequence::global_avg_pool() { return layer(plain_layer(OpKind::global_avg_pool)); }
LayerSequence& LayerSequence::multiply(std::vector<std::string> inputs) {
    LayerSpec spec = plain_layer(OpKind::multiply);
    spec.inputs = std::move(inputs);
    return layer(std::move(spec));
}
LayerSequence& LayerSequence::mixture(std::vector<std::string> inputs) {
    LayerSpec spec = plain_layer(OpKind::mixture);
    spec.inputs = std::move(inputs);
    return layer(std::move(spec));
}
LayerSequence& LayerSequence::named(std::string name) {
    if (layers_->empty()) throw Error("model builder: named(\"" + name + "\") called before any layer was added");
    layers_->back().name = std::move(name);
    return *this;
}
LayerSequence& LayerSequence::from(std::vector<std::string> inputs) {
    next_inputs_ = std::move(inputs);
    return *this;
}

ModelBuilder::ModelBuilder(int64_t channels, int64_t height, int64_t width) : trunk_(spec_.trunk) {
    spec_.channels = channels;
    spec_.height = height;
    spec_.width = width;
}

LayerSequence& ModelBuilder::head(std::string name, Loss loss, float weight, std::string input) {
    HeadSpec& head = heads_.emplace_back();
    head.name = std::move(name);
    head.loss = loss;
    head.weight = weight;
    head.input = std::move(input);
    return head_sequences_.emplace_back(head.layers);
}

ModelSpec ModelBuilder::build() const {
    ModelSpec spec = spec_;
    spec.heads.assign(heads_.begin(), heads_.end());
    return spec;
}

}  // namespace ladon
