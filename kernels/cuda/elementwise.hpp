#pragma once
// Elementwise ops and channel concat on the GPU, the same contract as
// ladon::cpu's (kernels/ops.hpp): forward overwrites, backward accumulates
// (+=). Activations and adds may run in place. Every function enqueues on
// `stream` and returns the launch's error.
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/ops.hpp"

namespace ladon::cuda {

cudaError_t activation_forward(ops::Activation kind, float negative_slope, int64_t count, const float* x, float* y,
                               cudaStream_t stream);
// Reads x for relu and leaky_relu, y for sigmoid and tanh; the other may be
// nullptr. accumulate = false: grad_x = the step (the gradient's first write).
cudaError_t activation_backward(ops::Activation kind, float negative_slope, int64_t count, const float* x,
                                const float* y, const float* grad_y, float* grad_x, cudaStream_t stream,
                                bool accumulate = true);

// The mask of ops::uniform01 (bit-identical to the CPU backend's); no mask is
// stored. `seed_device` (device memory, nullable) replaces `seed` when the
// kernel runs, so a replayed CUDA graph can draw each step's mask.
cudaError_t dropout_forward(int64_t count, float probability, uint64_t seed, const float* x, float* y,
                            cudaStream_t stream, const uint64_t* seed_device = nullptr);
cudaError_t dropout_backward(int64_t count, float probability, uint64_t seed, const float* grad_y, float* grad_x,
                             cudaStream_t stream, const uint64_t* seed_device = nullptr, bool accumulate = true);

// y = a + b and dst += src; with `relu`, ReLU is applied to the sum (a
// fused relu layer after an add).
cudaError_t add_forward(int64_t count, const float* a, const float* b, float* y, cudaStream_t stream,
                        bool relu = false);
cudaError_t accumulate(int64_t count, const float* source, float* destination, cudaStream_t stream,
                       bool relu = false);
// data *= factor, and data = value (in place; the data-parallel head weighting).
cudaError_t scale(int64_t count, float factor, float* data, cudaStream_t stream);
cudaError_t fill(int64_t count, float value, float* data, cudaStream_t stream);

// input [batch, channels, spatial] is the slice [channel_offset, channel_offset + channels) of
// y [batch, total_channels, spatial].
cudaError_t concat_forward(int64_t batch, int64_t spatial, int64_t channels, int64_t channel_offset,
                           int64_t total_channels, const float* input, float* y, cudaStream_t stream);
cudaError_t concat_backward(int64_t batch, int64_t spatial, int64_t channels, int64_t channel_offset,
                            int64_t total_channels, const float* grad_y, float* grad_input, cudaStream_t stream);

}  // namespace ladon::cuda
