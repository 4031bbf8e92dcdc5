#pragma once
// Batch normalisation over [batch, channels, spatial] on the GPU, the same
// contract as ladon::cpu's (kernels/ops.hpp): statistics per channel over
// batch x spatial, the biased variance normalises and the unbiased one updates
// running_var (momentum as in BatchNormShape); forward overwrites y, backward
// accumulates (+=) into grad_x, grad_gamma and grad_beta. Sums run in double
// in a fixed per-block order, so results are the same from run to run (they
// agree with the CPU's to float rounding, not bit for bit). Every function
// enqueues on `stream` and returns the launch's error.
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/ops.hpp"

namespace ladon::cuda {

// Saves the float mean and 1/sqrt(var + eps) per channel for backward.
cudaError_t batch_norm_forward_training(const ops::BatchNormShape& shape, const float* x, const float* gamma,
                                        const float* beta, float* y, float* saved_mean, float* saved_inv_std,
                                        float* running_mean, float* running_var, cudaStream_t stream);
cudaError_t batch_norm_forward_inference(const ops::BatchNormShape& shape, const float* x, const float* gamma,
                                         const float* beta, const float* running_mean, const float* running_var,
                                         float* y, cudaStream_t stream);
cudaError_t batch_norm_backward(const ops::BatchNormShape& shape, const float* x, const float* grad_y,
                                const float* gamma, const float* saved_mean, const float* saved_inv_std, float* grad_x,
                                float* grad_gamma, float* grad_beta, cudaStream_t stream);

}  // namespace ladon::cuda
