// Launch wrappers for gating.cuh.
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/gating.cuh"
#include "kernels/cuda/gating.hpp"
#include "kernels/cuda/launch.hpp"

namespace ladon::cuda {
namespace {

using gating::threads_per_block;

constexpr int64_t max_blocks = 4096;  // grid-stride: enough to fill a large GPU several times over

dim3 grid_for(int64_t threads) {
    return dim3(static_cast<unsigned>(
        std::clamp<int64_t>((threads + threads_per_block - 1) / threads_per_block, 1, max_blocks)));
}

template <typename Op>
cudaError_t run_elementwise(int64_t count, const Op& op, cudaStream_t stream) {
    if (count == 0) return cudaSuccess;
    return launch(gating::elementwise_kernel<Op>, grid_for(count), dim3(threads_per_block), 0, stream, count, op);
}

// A warp per row where rows are long enough to keep its lanes busy.
template <typename Rows>
cudaError_t run_row_sums(const Rows& rows, cudaStream_t stream) {
    if (rows.count == 0) return cudaSuccess;
    if (rows.length >= gating::kWarpSize)
        return launch(gating::row_sum_kernel<gating::kWarpSize, Rows>, grid_for(rows.count * gating::kWarpSize),
                      dim3(threads_per_block), 0, stream, rows);
    return launch(gating::row_sum_kernel<1, Rows>, grid_for(rows.count), dim3(threads_per_block), 0, stream, rows);
}

bool valid_planes(int64_t planes, int64_t spatial) { return planes >= 0 && spatial >= 1; }

bool pack_experts(int64_t batch, int64_t features, std::span<const float* const> values,
                  std::span<float* const> gradients, gating::Experts& experts) {
    if (batch < 0 || features < 1 || values.empty() || int64_t(values.size()) > ops::max_mixture_experts ||
        (!gradients.empty() && gradients.size() != values.size()))
        return false;
    experts = {};
    experts.count = int64_t(values.size());
    std::copy(values.begin(), values.end(), experts.values);
    std::copy(gradients.begin(), gradients.end(), experts.gradients);
    return true;
}

}  // namespace

cudaError_t global_avg_pool_forward(int64_t planes, int64_t spatial, const float* x, float* y, cudaStream_t stream) {
    if (!valid_planes(planes, spatial)) return cudaErrorInvalidValue;
    return run_row_sums(gating::PlaneMeans{planes, spatial, 1.0f / float(spatial), x, y}, stream);
}

cudaError_t global_avg_pool_backward(int64_t planes, int64_t spatial, const float* grad_y, float* grad_x,
                                     cudaStream_t stream) {
    if (!valid_planes(planes, spatial)) return cudaErrorInvalidValue;
    return run_elementwise(planes * spatial, gating::SpreadMean{spatial, 1.0f / float(spatial), grad_y, grad_x},
                           stream);
}

cudaError_t multiply_forward(int64_t planes, int64_t spatial, const float* a, const float* b, float* y,
                             cudaStream_t stream) {
    if (!valid_planes(planes, spatial)) return cudaErrorInvalidValue;
    return run_elementwise(planes * spatial, gating::ScaleRows{spatial, a, b, y}, stream);
}

cudaError_t multiply_backward(int64_t planes, int64_t spatial, const float* a, const float* b, const float* grad_y,
                              float* grad_a, float* grad_b, cudaStream_t stream) {
    if (!valid_planes(planes, spatial)) return cudaErrorInvalidValue;
    cudaError_t e = cudaSuccess;
    if (grad_a != nullptr) e = run_row_sums(gating::RowDots{planes, spatial, grad_y, b, grad_a}, stream);
    if (e == cudaSuccess && grad_b != nullptr)
        e = run_elementwise(planes * spatial, gating::ScaleRowsBackward{spatial, a, grad_y, grad_b}, stream);
    return e;
}

cudaError_t mixture_forward(int64_t batch, int64_t features, const float* gate, std::span<const float* const> experts,
                            float* y, cudaStream_t stream) {
    gating::Experts packed;
    if (!pack_experts(batch, features, experts, {}, packed)) return cudaErrorInvalidValue;
    return run_elementwise(batch * features, gating::MixExperts{features, gate, packed, y}, stream);
}

cudaError_t mixture_backward(int64_t batch, int64_t features, const float* gate, std::span<const float* const> experts,
                             const float* grad_y, float* grad_gate, std::span<float* const> grad_experts,
                             cudaStream_t stream) {
    gating::Experts packed;
    if (grad_experts.size() != experts.size() || !pack_experts(batch, features, experts, grad_experts, packed))
        return cudaErrorInvalidValue;
    cudaError_t e = cudaSuccess;
    if (grad_gate != nullptr)
        e = run_row_sums(gating::GateDots{batch * packed.count, features, grad_y, packed, grad_gate}, stream);
    const bool any_expert =
        std::any_of(grad_experts.begin(), grad_experts.end(), [](float* g) { return g != nullptr; });
    if (e == cudaSuccess && any_expert)
        e = run_elementwise(batch * features, gating::MixExpertsBackward{features, gate, grad_y, packed}, stream);
    return e;
}

}  // namespace ladon::cuda
