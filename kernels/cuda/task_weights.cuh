#pragma once
// Device code of learned task weights (host API: task_weights.hpp).
#include "kernels/cuda/device.hpp"
#include "kernels/ops.hpp"

namespace ladon::cuda::task_weights_detail {

// One thread per head: w = base * exp(-s) into the loss descriptor (and a
// copy for the host to read).
__global__ void set_task_weights_kernel(int num_heads, const float* __restrict__ base_weights,
                                        const float* __restrict__ log_variance, ops::LossHead* heads,
                                        float* __restrict__ weights_out) {
    const int h = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (h >= num_heads) return;
    const float weight = log_variance ? base_weights[h] * expf(-log_variance[h]) : base_weights[h];
    heads[h].weight = weight;
    weights_out[h] = weight;
}

// d/ds [exp(-s) w L + s] = 1 - exp(-s) w L, with exp(-s) w the head's weight.
__global__ void task_weight_gradients_kernel(int num_heads, const ops::LossHead* __restrict__ heads,
                                             const float* __restrict__ head_losses,
                                             float* __restrict__ grad_log_variance) {
    const int h = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (h >= num_heads) return;
    grad_log_variance[h] = 1.0f - heads[h].weight * head_losses[h];
}

}  // namespace ladon::cuda::task_weights_detail
