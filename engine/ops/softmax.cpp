// softmax over the channel axis: each (n, h, w) position's channels sum to
// one; on a dense layer's [N, F] output, over the features (a gate's
// weights, an attention's scores). PyTorch's softmax(dim=1).
#if !defined(LADON_OPS_CUDA)
#include "engine/ops/op.hpp"

namespace ladon::engine {
namespace {

TensorShape infer(NodeInference& inference) { return inference.input(0); }

OpCost cost(const Graph& graph, const Node& node) {
    const double count = double(graph.tensors[node.output].shape.elements());
    return {5 * count, 4 * count, 8 * count, 16 * count};
}

void cpu_forward(const CpuOpStep& s) {
    const TensorShape& in = s.shape(s.node.inputs[0]);
    cpu::softmax_forward(in.batch, in.channels, in.height * in.width, s.x(), s.y());
}

void cpu_backward(const CpuOpStep& s) {
    const TensorShape& in = s.shape(s.node.inputs[0]);
    if (s.needs_grad(s.node.inputs[0]))
        cpu::softmax_backward(in.batch, in.channels, in.height * in.width, s.y(), s.grad_y(), s.grad(s.node.inputs[0]));
}

}  // namespace

extern const OpDefinition softmax_op{
    .kind = OpKind::softmax,
    .name = "softmax",
    .infer = infer,
    .cost = cost,
    .cpu_forward = cpu_forward,
    .cpu_backward = cpu_backward,
};

}  // namespace ladon::engine

#else  // the CUDA half
#include "engine/ops/cuda_op.hpp"
#include "kernels/cuda/softmax.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {
namespace {

cudaError_t forward(const CudaOpStep& s) {
    const TensorShape& in = s.shape(s.node.inputs[0]);
    return cuda::softmax_forward(in.batch, in.channels, in.height * in.width, s.x(), s.y(), s.stream);
}

cudaError_t backward(const CudaOpStep& s) {
    const TensorShape& in = s.shape(s.node.inputs[0]);
    if (!s.needs_grad(s.node.inputs[0])) return cudaSuccess;
    return cuda::softmax_backward(in.batch, in.channels, in.height * in.width, s.y(), s.grad_y(),
                                  s.grad(s.node.inputs[0]), s.stream);
}

}  // namespace

extern const CudaOpDefinition softmax_cuda{OpKind::softmax, forward, backward};

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
#endif
