#pragma once
// The convolutions of conv2d.hpp on the tensor cores (conv2d_tensor_core.cuh),
// called by conv2d_* when their precision is tf32 or bf16 and
// conv2d_tensor_core_applies(shape). Same contracts; the caller has checked
// the shape (conv2d.cu) and handles the split's partial sums and the bias.
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/gemm_tensor_core.hpp"
#include "kernels/ops.hpp"

namespace ladon::cuda {

// Whether the tensor-core kernels take this shape: every index within a
// sample, and every flattened GEMM dimension, fits in 32 bits.
bool conv2d_tensor_core_applies(const ops::Conv2dShape& shape);

namespace tc_conv {

cudaError_t forward(const ops::Conv2dShape& shape, const float* input, const float* weight, const float* bias,
                    ops::Activation activation, float negative_slope, float* output, MatmulPrecision precision,
                    cudaStream_t stream, MmaTiles tiles = MmaTiles::automatic);

// accumulate = false: grad_input = the result (every element written).
cudaError_t backward_data(const ops::Conv2dShape& shape, const float* weight, const float* grad_output,
                          float* grad_input, MatmulPrecision precision, cudaStream_t stream,
                          MmaTiles tiles = MmaTiles::automatic, bool accumulate = true);

// The GEMM part of backward filter (always 64 x 64 tiles; it fills the GPU
// by splitting the reduction): `splits` runs of `split_length` of the
// reduction; with more than one, run z overwrites partials[z] (each
// weight_size() floats) for the caller to add in order.
cudaError_t backward_filter(const ops::Conv2dShape& shape, const float* input, const float* grad_output,
                            int64_t splits, int64_t split_length, float* grad_weight, float* partials,
                            MatmulPrecision precision, cudaStream_t stream);

}  // namespace tc_conv
}  // namespace ladon::cuda
