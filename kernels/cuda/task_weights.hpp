#pragma once
// Learned task weights (uncertainty weighting, Kendall et al. 2018) on the
// GPU: each head's loss weight is base * exp(-s) for a learned log-variance s,
// and the total loss gains + s. The same float formulas as the CPU executor
// (engine/executor.cpp), computed on the device so a step needs no copy of s
// to the host. All pointers are device memory; heads_device is the loss's
// descriptor array (multi_head_loss.hpp).
#include "kernels/cuda/device.hpp"
#include "kernels/ops.hpp"

namespace ladon::cuda {

// heads_device[h].weight = weights_out[h] = base_weights[h] * exp(-log_variance[h]),
// or base_weights[h] with log_variance null (weights drawn per step on the host).
cudaError_t set_task_weights(int num_heads, const float* base_weights, const float* log_variance,
                             ops::LossHead* heads_device, float* weights_out, cudaStream_t stream);

// grad_log_variance[h] = 1 - heads_device[h].weight * head_losses[h] (overwrites).
cudaError_t task_weight_gradients(int num_heads, const ops::LossHead* heads_device, const float* head_losses,
                                  float* grad_log_variance, cudaStream_t stream);

}  // namespace ladon::cuda
