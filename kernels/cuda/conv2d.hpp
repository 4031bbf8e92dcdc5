#pragma once
// 2-D convolution on the GPU, the same contract as ladon::cpu's conv2d_*
// (kernels/ops.hpp): NCHW input and output, OIHW weight; forward overwrites,
// backward accumulates (+=). Each function enqueues on `stream` and returns the
// first launch error, or cudaErrorInvalidValue for an invalid shape. No float
// atomics: every result is deterministic. `precision` tf32 or bf16 runs the
// tensor-core kernels (conv2d_tensor_core.hpp) where the shape's indices fit
// in 32 bits, fp32 (and any other shape) the FP32 SIMT kernels.
#include <cstddef>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/ops.hpp"

namespace ladon::cuda {

// output = activation(conv(input, weight) + bias), the bias and the activation
// fused into the GEMM's epilogue; equals cpu::conv2d_forward followed by
// cpu::activation_forward. bias may be nullptr.
cudaError_t conv2d_forward(const ops::Conv2dShape& shape, const float* input, const float* weight,
                           const float* bias /*nullable*/, ops::Activation activation, float negative_slope,
                           float* output, cudaStream_t stream, MatmulPrecision precision = MatmulPrecision::fp32);

// grad_input += the transposed convolution of grad_output with weight (=
// with accumulate false: every element is written).
cudaError_t conv2d_backward_data(const ops::Conv2dShape& shape, const float* weight, const float* grad_output,
                                 float* grad_input, cudaStream_t stream,
                                 MatmulPrecision precision = MatmulPrecision::fp32, bool accumulate = true);

// grad_weight += sum over the batch of grad_output x unfolded input, and
// grad_bias[c] += sum of grad_output over batch and positions of channel c.
// A layer with few weight tiles and a long reduction (batch x positions) splits
// the reduction across blocks, and so does the bias gradient's sum per
// channel (add_channel_sums): `workspace` holds their partial sums and needs
// conv2d_backward_filter_workspace_bytes(shape) bytes (nullptr when that is
// 0; the bias sums then take one block per channel). The splits depend only
// on the shape, and the partials are added in a fixed order, so the result
// is bitwise reproducible.
std::size_t conv2d_backward_filter_workspace_bytes(const ops::Conv2dShape& shape);
cudaError_t conv2d_backward_filter(const ops::Conv2dShape& shape, const float* input, const float* grad_output,
                                   float* grad_weight, float* grad_bias /*nullable*/, float* workspace,
                                   cudaStream_t stream, MatmulPrecision precision = MatmulPrecision::fp32);

}  // namespace ladon::cuda
