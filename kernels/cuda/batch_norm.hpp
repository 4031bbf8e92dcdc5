#pragma once
// Batch normalisation over [batch, channels, spatial] on the GPU, the same
// contract as ladon::cpu's (kernels/ops.hpp): statistics per channel over
// batch x spatial, the biased variance normalises and the unbiased one updates
// running_var (momentum as in BatchNormShape); forward overwrites y, backward
// adds into grad_gamma and grad_beta and adds into (or overwrites) grad_x.
//
// Sums run in FP32, shifted and pairwise, in an order fixed by the shape and
// the pointers' alignment, so results are the same from run to run and agree
// with the CPU's double sums to float rounding. The training passes keep
// per-block partial sums in `workspace`: batch_norm_workspace_bytes(shape)
// bytes of device memory, free again when the function's kernels have run.
// A fused ReLU (`relu`) writes max(y, 0); its backward takes that output
// (`relu_output`) and passes the gradient only where it is positive. Tensors
// of 2^31 or more values are refused (cudaErrorInvalidValue): the kernels
// index in 32 bits. Every function enqueues on `stream` and returns the
// launch's error.
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/ops.hpp"

namespace ladon::cuda {

std::size_t batch_norm_workspace_bytes(const ops::BatchNormShape& shape);

// Saves the float mean and 1/sqrt(var + eps) per channel for backward.
cudaError_t batch_norm_forward_training(const ops::BatchNormShape& shape, const float* x, const float* gamma,
                                        const float* beta, float* y, float* saved_mean, float* saved_inv_std,
                                        float* running_mean, float* running_var, float* workspace,
                                        cudaStream_t stream, bool relu = false);
cudaError_t batch_norm_forward_inference(const ops::BatchNormShape& shape, const float* x, const float* gamma,
                                         const float* beta, const float* running_mean, const float* running_var,
                                         float* y, cudaStream_t stream, bool relu = false);

struct BatchNormBackwardOptions {
    const float* relu_output = nullptr;  // set: the forward fused a ReLU and wrote this
    bool accumulate = true;              // grad_x += dx; false: grad_x = dx
};
cudaError_t batch_norm_backward(const ops::BatchNormShape& shape, const float* x, const float* grad_y,
                                const float* gamma, const float* saved_mean, const float* saved_inv_std, float* grad_x,
                                float* grad_gamma, float* grad_beta, float* workspace, cudaStream_t stream,
                                BatchNormBackwardOptions options = {});

// How many blocks share each channel (what the workspace holds partials
// for), for tests and benchmarks: enough blocks over all channels to fill a
// GPU, each with at least threads_per_block x unroll values. Fixed by the
// shape alone, not the device, so results do not depend on the GPU.
int batch_norm_blocks_per_channel(const ops::BatchNormShape& shape);

}  // namespace ladon::cuda
