#pragma once
// max_pool2d and avg_pool2d on the GPU, the same contract as ladon::cpu's
// (kernels/ops.hpp) but for the argmax's format: forward overwrites, backward
// adds (or overwrites, accumulate = false). Max pooling pads with -inf, the
// first maximum wins and NaN wins; average pooling divides by kernel_height *
// kernel_width. Results are bit-identical to the CPU backend's and to each
// other from run to run (backward gathers, no atomics). Every function
// enqueues on `stream` and returns the launch's error: cudaErrorInvalidValue
// for a shape the CPU backend would reject, or one with 2^31 elements or more
// in its input or its output (the kernels index in 32 bits).
//
// The argmax buffer holds one int32 per output, as the CPU's, and is opaque
// to all but max_pool2d_backward: for a window of at most 256 positions its
// first output_size() bytes hold, per output, the byte offset of the maximum
// within the window, (h - h0) * kernel_width + (w - w0) with (h0, w0) the
// window's corner in the padded input (255 for a window wholly in the
// padding); for larger windows it holds the CPU's int32 index within the
// [in_height, in_width] plane (-1 for a window wholly in the padding).
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/ops.hpp"

namespace ladon::cuda {

// Bytes max_pool2d_forward writes per output into the argmax buffer: 1 or 4.
inline int max_pool2d_argmax_bytes(const ops::Pool2dShape& shape) {
    return shape.kernel_height * shape.kernel_width <= 256 ? 1 : 4;
}

cudaError_t max_pool2d_forward(const ops::Pool2dShape& shape, const float* input, float* output, int32_t* argmax,
                               cudaStream_t stream);
// accumulate = false: grad_input = the gradient (its first write), else +=.
cudaError_t max_pool2d_backward(const ops::Pool2dShape& shape, const float* grad_output, const int32_t* argmax,
                                float* grad_input, cudaStream_t stream, bool accumulate = true);
cudaError_t avg_pool2d_forward(const ops::Pool2dShape& shape, const float* input, float* output, cudaStream_t stream);
cudaError_t avg_pool2d_backward(const ops::Pool2dShape& shape, const float* grad_output, float* grad_input,
                                cudaStream_t stream, bool accumulate = true);

}  // namespace ladon::cuda
