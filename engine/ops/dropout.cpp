// dropout: keeps each element with probability 1 - p, scaled by 1 / (1 - p),
// from a counter-based hash of (seed, index) so both backends draw the same
// mask; the identity in inference.
#if !defined(LADON_OPS_CUDA)
#include <fmt/format.h>

#include <algorithm>

#include "engine/ops/op.hpp"

namespace ladon::engine {
namespace {

constexpr OpField fields[] = {{"probability", &LayerSpec::probability}};

TensorShape infer(NodeInference& inference) {
    const float p = inference.node().spec.probability;
    if (!(p >= 0.0f && p < 1.0f)) inference.fail(fmt::format("needs probability in [0, 1), got {}", p));
    return inference.input(0);
}

OpCost cost(const Graph& graph, const Node& node) {
    const double count = double(graph.tensors[node.output].shape.elements());
    return {count, count, 8 * count, 8 * count};
}

void cpu_forward(const CpuOpStep& s) {
    if (s.training)
        cpu::dropout_forward(s.count(), s.node.spec.probability, s.dropout_seed, s.x(), s.y());
    else
        std::copy(s.x(), s.x() + s.count(), s.y());
}

void cpu_backward(const CpuOpStep& s) {
    if (s.needs_grad(s.node.inputs[0]))
        cpu::dropout_backward(s.count(), s.node.spec.probability, s.dropout_seed, s.grad_y(), s.grad(s.node.inputs[0]));
}

}  // namespace

extern const OpDefinition dropout_op{
    .kind = OpKind::dropout,
    .name = "dropout",
    .fields = fields,
    .infer = infer,
    .cost = cost,
    .cpu_forward = cpu_forward,
    .cpu_backward = cpu_backward,
};

}  // namespace ladon::engine

#else  // the CUDA half
#include "engine/ops/cuda_op.hpp"
#include "kernels/cuda/elementwise.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {
namespace {

cudaError_t forward(const CudaOpStep& s) {
    if (!s.training)
        return cudaMemcpyAsync(s.y(), s.x(), std::size_t(s.count()) * sizeof(float), cudaMemcpyDeviceToDevice,
                               s.stream);
    return cuda::dropout_forward(s.count(), s.node.spec.probability, s.dropout_seed, s.x(), s.y(), s.stream,
                                 s.dropout_seeds + s.index);
}

cudaError_t backward(const CudaOpStep& s) {
    if (!s.needs_grad(s.node.inputs[0])) return cudaSuccess;
    return cuda::dropout_backward(s.count(), s.node.spec.probability, s.dropout_seed, s.grad_y(),
                                  s.grad(s.node.inputs[0]), s.stream, s.dropout_seeds + s.index,
                                  !s.stores_gradient(0));
}

}  // namespace

extern const CudaOpDefinition dropout_cuda{OpKind::dropout, forward, backward, nullptr, true};

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
#endif
