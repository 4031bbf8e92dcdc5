// dense: reads its input flattened to [N, C*H*W]; weight [out, in], optional
// bias; PyTorch's flatten + nn.Linear. Heads whose first layer is a dense layer
// on one tensor may run as one GEMM on the CUDA backend (engine/fusion.hpp),
// which the CUDA executor does itself.
#if !defined(LADON_OPS_CUDA)
#include <fmt/format.h>

#include "engine/ops/op.hpp"

namespace ladon::engine {
namespace {

constexpr OpField fields[] = {{"out_features", &LayerSpec::out_features}, {"bias", &LayerSpec::bias}};

TensorShape infer(NodeInference& inference) {
    Node& node = inference.node();
    const LayerSpec& layer = node.spec;
    const TensorShape& in = inference.input(0);
    if (layer.out_features <= 0) inference.fail(fmt::format("needs out_features > 0, got {}", layer.out_features));
    node.dense = {in.batch, in.per_sample(), layer.out_features};
    node.weight = inference.add_parameter("weight", {layer.out_features, in.per_sample()},
                                          BufferSlice::Init::uniform_fan_in, in.per_sample());
    if (layer.bias)
        node.bias = inference.add_parameter("bias", {layer.out_features}, BufferSlice::Init::uniform_fan_in,
                                            in.per_sample());
    return {in.batch, layer.out_features, 1, 1};
}

OpCost cost(const Graph&, const Node& node) {
    const auto& d = node.dense;
    const double macs = double(d.batch) * double(d.in_features) * double(d.out_features);
    const double operands = double(d.batch * d.in_features + d.in_features * d.out_features + d.batch * d.out_features) * 4;
    return {2 * macs, 4 * macs, operands, 2 * operands};
}

void cpu_forward(const CpuOpStep& s) {
    const Node& n = s.node;
    cpu::dense_forward(n.dense, s.x(), s.param(n.weight), s.param(n.bias), s.y());
}

void cpu_backward(const CpuOpStep& s) {
    const Node& n = s.node;
    cpu::dense_backward_filter(n.dense, s.x(), s.grad_y(), s.param_grad(n.weight), s.param_grad(n.bias));
    if (s.needs_grad(n.inputs[0]))
        cpu::dense_backward_data(n.dense, s.param(n.weight), s.grad_y(), s.grad(n.inputs[0]));
}

}  // namespace

extern const OpDefinition dense_op{
    .kind = OpKind::dense,
    .name = "dense",
    .fields = fields,
    .infer = infer,
    .cost = cost,
    .takes_epilogue = [](ops::Activation) { return true; },
    .cpu_forward = cpu_forward,
    .cpu_backward = cpu_backward,
};

}  // namespace ladon::engine

#else  // the CUDA half
#include "engine/ops/cuda_op.hpp"
#include "kernels/cuda/gemm.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {
namespace {

cudaError_t forward(const CudaOpStep& s) {
    const Node& n = s.node;
    return cuda::dense_forward(n.dense, s.x(), s.param(n.weight), s.param(n.bias), s.epilogue, s.epilogue_slope,
                               s.epilogue_output ? s.epilogue_output : s.y(), s.stream, s.matmul, s.gemm_scratch());
}

cudaError_t backward(const CudaOpStep& s) {
    const Node& n = s.node;
    cudaError_t e =
        cuda::dense_backward_filter(n.dense, s.x(), s.grad_y(), s.param_grad(n.weight), s.param_grad(n.bias), s.stream,
                                    s.matmul, s.gemm_scratch());
    if (e == cudaSuccess && s.needs_grad(n.inputs[0]))
        e = cuda::dense_backward_data(n.dense, s.param(n.weight), s.grad_y(), s.grad(n.inputs[0]), s.stream, s.matmul,
                                      s.gemm_scratch(), !s.stores_gradient(0));
    return e;
}

// Split-K scratch for the three GEMMs (tensor cores only).
std::size_t workspace(const Node& node, cuda::MatmulPrecision precision) {
    return cuda::dense_workspace_bytes(node.dense, precision);
}

}  // namespace

extern const CudaOpDefinition dense_cuda{OpKind::dense, forward, backward, workspace, true};

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
#endif
