// relu, leaky_relu, sigmoid, tanh: elementwise, the output the input's shape.
// Each can run in the epilogue of the conv or dense layer before it
// (engine/fusion.hpp).
#if !defined(LADON_OPS_CUDA)
#include <fmt/format.h>

#include "engine/ops/op.hpp"

namespace ladon::engine {
namespace {

constexpr OpField leaky_fields[] = {{"negative_slope", &LayerSpec::negative_slope}};

TensorShape infer(NodeInference& inference) {
    const LayerSpec& layer = inference.node().spec;
    if (layer.op == OpKind::leaky_relu && !(layer.negative_slope >= 0.0f))
        inference.fail(fmt::format("needs negative_slope >= 0, got {}", layer.negative_slope));
    return inference.input(0);
}

OpCost cost(const Graph& graph, const Node& node) {
    const double count = double(graph.tensors[node.output].shape.elements());
    return {count, 2 * count, 8 * count, 12 * count};
}

void cpu_forward(const CpuOpStep& s) {
    cpu::activation_forward(node_activation(s.node), s.node.spec.negative_slope, s.count(), s.x(), s.y());
}

void cpu_backward(const CpuOpStep& s) {
    if (s.needs_grad(s.node.inputs[0]))
        cpu::activation_backward(node_activation(s.node), s.node.spec.negative_slope, s.count(), s.x(), s.y(),
                                 s.grad_y(), s.grad(s.node.inputs[0]));
}

constexpr OpDefinition activation(OpKind kind, const char* name, ops::Activation activation,
                                  std::span<const OpField> fields = {}) {
    return {.kind = kind,
            .name = name,
            .fields = fields,
            .infer = infer,
            .cost = cost,
            .activation = activation,
            .cpu_forward = cpu_forward,
            .cpu_backward = cpu_backward};
}

}  // namespace

extern const OpDefinition relu_op = activation(OpKind::relu, "relu", ops::Activation::relu);
extern const OpDefinition leaky_relu_op =
    activation(OpKind::leaky_relu, "leaky_relu", ops::Activation::leaky_relu, leaky_fields);
extern const OpDefinition sigmoid_op = activation(OpKind::sigmoid, "sigmoid", ops::Activation::sigmoid);
extern const OpDefinition tanh_op = activation(OpKind::tanh, "tanh", ops::Activation::tanh);

}  // namespace ladon::engine

#else  // the CUDA half
#include "engine/ops/cuda_op.hpp"
#include "kernels/cuda/elementwise.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {
namespace {

cudaError_t forward(const CudaOpStep& s) {
    if (s.fused_into_producer) return cudaSuccess;  // the producer's epilogue computed it
    return cuda::activation_forward(node_activation(s.node), s.node.spec.negative_slope, s.count(), s.x(), s.y(),
                                    s.stream);
}

cudaError_t backward(const CudaOpStep& s) {
    if (s.backward_in_producer || !s.needs_grad(s.node.inputs[0])) return cudaSuccess;
    // A fused activation never stored its input: relu and leaky relu
    // (positive slope) read the sign from y.
    return cuda::activation_backward(node_activation(s.node), s.node.spec.negative_slope, s.count(),
                                     s.fused_into_producer ? s.y() : s.x(), s.y(), s.grad_y(),
                                     s.grad(s.node.inputs[0]), s.stream, !s.stores_gradient(0));
}

}  // namespace

extern const CudaOpDefinition relu_cuda{OpKind::relu, forward, backward, nullptr, true};
extern const CudaOpDefinition leaky_relu_cuda{OpKind::leaky_relu, forward, backward, nullptr, true};
extern const CudaOpDefinition sigmoid_cuda{OpKind::sigmoid, forward, backward, nullptr, true};
extern const CudaOpDefinition tanh_cuda{OpKind::tanh, forward, backward, nullptr, true};

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
#endif
