#pragma once
// The GEMM of gemm.hpp on the tensor cores (precision fp32: gemm itself): the operands rounded to TF32 or
// BF16 as the fragments are loaded, FP32 accumulation and output. Same
// arguments and contract as cuda::gemm; where the tensor-core kernel's
// alignment does not hold (lda or ldb not a multiple of 4 floats, A or B not
// 16-byte aligned) it runs cuda::gemm's FP32 kernel instead.
#include "kernels/cuda/device.hpp"
#include "kernels/cuda/gemm.hpp"

namespace ladon::cuda {

cudaError_t gemm_tensor_core(const GemmArguments& arguments, MatmulPrecision precision, cudaStream_t stream);

// Whether gemm_tensor_core takes the tensor cores for these arguments.
bool gemm_tensor_core_applies(const GemmArguments& arguments);

}  // namespace ladon::cuda
