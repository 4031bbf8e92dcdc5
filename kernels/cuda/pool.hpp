#pragma once
// max_pool2d and avg_pool2d on the GPU, the same contract as ladon::cpu's
// (kernels/ops.hpp): forward overwrites, backward accumulates (+=). Max
// pooling pads with -inf and stores argmax as the int32 index within the
// [in_height, in_width] plane (first maximum wins, NaN wins, -1 for a window
// wholly in the padding); average pooling divides by kernel_height *
// kernel_width. Results are bit-identical to the CPU backend's and to each
// other from run to run (backward gathers, no atomics). Every function
// enqueues on `stream` and returns the launch's error (cudaErrorInvalidValue
// for a shape the CPU backend would reject).
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/ops.hpp"

namespace ladon::cuda {

cudaError_t max_pool2d_forward(const ops::Pool2dShape& shape, const float* input, float* output, int32_t* argmax,
                               cudaStream_t stream);
// accumulate = false: grad_input = the gradient (its first write), else +=.
cudaError_t max_pool2d_backward(const ops::Pool2dShape& shape, const float* grad_output, const int32_t* argmax,
                                float* grad_input, cudaStream_t stream, bool accumulate = true);
cudaError_t avg_pool2d_forward(const ops::Pool2dShape& shape, const float* input, float* output, cudaStream_t stream);
cudaError_t avg_pool2d_backward(const ops::Pool2dShape& shape, const float* grad_output, float* grad_input,
                                cudaStream_t stream, bool accumulate = true);

}  // namespace ladon::cuda
