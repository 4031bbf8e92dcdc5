// flatten: [N, C, H, W] to [N, C*H*W, 1, 1], a view of its input (no copy,
// no kernel; its gradient shares its input's slot).
#if !defined(LADON_OPS_CUDA)
#include "engine/ops/op.hpp"

namespace ladon::engine {
namespace {

TensorShape infer(NodeInference& inference) {
    inference.alias_input();
    const TensorShape& in = inference.input(0);
    return {in.batch, in.per_sample(), 1, 1};
}

OpCost cost(const Graph&, const Node&) { return {}; }
void cpu_nothing(const CpuOpStep&) {}

}  // namespace

extern const OpDefinition flatten_op{
    .kind = OpKind::flatten,
    .name = "flatten",
    .infer = infer,
    .cost = cost,
    .cpu_forward = cpu_nothing,
    .cpu_backward = cpu_nothing,
};

}  // namespace ladon::engine

#else  // the CUDA half
#include "engine/ops/cuda_op.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {
namespace {
cudaError_t nothing(const CudaOpStep&) { return cudaSuccess; }
}  // namespace

extern const CudaOpDefinition flatten_cuda{OpKind::flatten, nothing, nothing};

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
#endif
