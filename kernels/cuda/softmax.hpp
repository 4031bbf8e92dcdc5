#pragma once
// softmax over the channel axis on the GPU, the same contract as ladon::cpu's
// (kernels/ops.hpp): forward overwrites y, backward accumulates into grad_x.
// Results agree with the CPU's to rounding (exp and the sums' order differ)
// and are the same from run to run. Each function enqueues on `stream` and
// returns the launch's error (cudaErrorInvalidValue for sizes the CPU backend
// would reject).
#include <cstdint>

#include "kernels/cuda/device.hpp"

namespace ladon::cuda {

cudaError_t softmax_forward(int64_t batch, int64_t channels, int64_t spatial, const float* x, float* y,
                            cudaStream_t stream);
cudaError_t softmax_backward(int64_t batch, int64_t channels, int64_t spatial, const float* y, const float* grad_y,
                             float* grad_x, cudaStream_t stream);

}  // namespace ladon::cuda
