#pragma once
// global_avg_pool, multiply and mixture on the GPU, the same contract as
// ladon::cpu's (kernels/ops.hpp): forward overwrites, backward accumulates
// (+=), any gradient may be nullptr. Sums run in a different order than the
// CPU's (lanes, then a warp's shuffle tree), so results agree to rounding,
// and are the same from run to run (no atomics). Every function enqueues on
// `stream` and returns the launch's error (cudaErrorInvalidValue for sizes
// the CPU backend would reject).
#include <cstdint>
#include <span>

#include "kernels/cuda/device.hpp"
#include "kernels/ops.hpp"

namespace ladon::cuda {

cudaError_t global_avg_pool_forward(int64_t planes, int64_t spatial, const float* x, float* y, cudaStream_t stream);
cudaError_t global_avg_pool_backward(int64_t planes, int64_t spatial, const float* grad_y, float* grad_x,
                                     cudaStream_t stream);

cudaError_t multiply_forward(int64_t planes, int64_t spatial, const float* a, const float* b, float* y,
                             cudaStream_t stream);
cudaError_t multiply_backward(int64_t planes, int64_t spatial, const float* a, const float* b, const float* grad_y,
                              float* grad_a, float* grad_b, cudaStream_t stream);

cudaError_t mixture_forward(int64_t batch, int64_t features, const float* gate, std::span<const float* const> experts,
                            float* y, cudaStream_t stream);
cudaError_t mixture_backward(int64_t batch, int64_t features, const float* gate, std::span<const float* const> experts,
                             const float* grad_y, float* grad_gate, std::span<float* const> grad_experts,
                             cudaStream_t stream);

}  // namespace ladon::cuda
