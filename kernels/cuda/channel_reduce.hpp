#pragma once
// Per-channel sums of an NCHW tensor [batch, channels, spatial] on the GPU
// (the conv bias gradient): several blocks per channel, float4 loads where
// aligned, partial sums in a workspace added in a fixed order, so the result
// is the same from run to run (kernels/cuda/channel_reduce.cuh).
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/device.hpp"

namespace ladon::cuda {

// The workspace add_channel_sums splits over; 0 for an empty tensor.
std::size_t channel_sums_workspace_bytes(int64_t batch, int64_t channels, int64_t spatial);

// out[c] += sum of x[n, c, s] over n and s. With `workspace` null (or a
// tensor that does not split) one block sums each channel. Refuses negative
// sizes and tensors of 2^31 values or more (cudaErrorInvalidValue).
cudaError_t add_channel_sums(int64_t batch, int64_t channels, int64_t spatial, const float* x, float* out,
                             float* workspace, cudaStream_t stream);

}  // namespace ladon::cuda
