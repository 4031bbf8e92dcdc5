#pragma once
// Dense (fully connected) layer on the GPU, the same contract as ladon::cpu's
// dense_* (kernels/ops.hpp): forward overwrites, backward accumulates (+=).
// Every function enqueues on `stream` and returns the launch's error.
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/ops.hpp"

namespace ladon::cuda {

// The math of the dense layers' GEMMs: FP32 on the SIMT kernel, or the
// operands rounded to TF32 / BF16 for the tensor cores (gemm_tensor_core.hpp).
enum class MatmulPrecision { fp32, tf32, bf16 };

// Device memory a tensor-core GEMM may use to split K across blocks (see
// choose_split_k in gemm_tensor_core.hpp): empty or too small, it does not
// split. The dense functions' need is dense_workspace_bytes.
struct GemmScratch {
    float* data = nullptr;
    std::size_t bytes = 0;
};

// output[N, O] = activation(input[N, I] · weight[O, I]^T + bias), the bias
// and the activation fused into the GEMM's epilogue. bias may be nullptr.
// Computing the activation here equals cpu::dense_forward followed by
// cpu::activation_forward.
cudaError_t dense_forward(const ops::DenseShape& shape, const float* input, const float* weight,
                          const float* bias /*nullable*/, ops::Activation activation, float negative_slope,
                          float* output, cudaStream_t stream, MatmulPrecision precision = MatmulPrecision::fp32,
                          GemmScratch scratch = {});

// grad_input[N, I] += grad_output[N, O] · weight[O, I] (= with accumulate false).
cudaError_t dense_backward_data(const ops::DenseShape& shape, const float* weight, const float* grad_output,
                                float* grad_input, cudaStream_t stream,
                                MatmulPrecision precision = MatmulPrecision::fp32, GemmScratch scratch = {},
                                bool accumulate = true);

// grad_weight[O, I] += grad_output^T[O, N] · input[N, I] (the batch is the
// GEMM's inner dimension) and grad_bias[O] += column sums of grad_output.
// Deterministic: no atomics, every sum in a fixed order.
cudaError_t dense_backward_filter(const ops::DenseShape& shape, const float* input, const float* grad_output,
                                  float* grad_weight, float* grad_bias /*nullable*/, cudaStream_t stream,
                                  MatmulPrecision precision = MatmulPrecision::fp32, GemmScratch scratch = {});

// The scratch that lets each of the three dense GEMMs above split K as
// choose_split_k would: 0 in fp32 or where no product splits.
std::size_t dense_workspace_bytes(const ops::DenseShape& shape, MatmulPrecision precision);

// The GEMM underneath, row-major: C[M, N] = alpha · op(A) · op(B) + beta · C,
// then + bias[column] and the activation. op(A) is [M, K]: A is stored
// [M, K] (lda >= K), or [K, M] when transpose_a (lda >= M); likewise op(B)
// is [K, N], stored [K, N] or, when transpose_b, [N, K]. C is not read when
// beta == 0 (it may hold NaN). Any M, N, K >= 0.
struct GemmArguments {
    bool transpose_a = false;
    bool transpose_b = false;
    int64_t m = 0, n = 0, k = 0;
    float alpha = 1.0f;
    const float* a = nullptr;
    int64_t lda = 0;
    const float* b = nullptr;
    int64_t ldb = 0;
    float beta = 0.0f;
    float* c = nullptr;
    int64_t ldc = 0;
    const float* bias = nullptr;  // [N], nullable
    ops::Activation activation = ops::Activation::identity;
    float negative_slope = 0.0f;
};
cudaError_t gemm(const GemmArguments& arguments, cudaStream_t stream);

// The grid of block_m x block_n tiles over C for a GEMM kernel, once the
// arguments are checked: cudaErrorInvalidValue for a negative size, a leading
// dimension too narrow or a grid past CUDA's limits. An empty C gives
// cudaSuccess and a grid of 0 blocks (nothing to launch).
cudaError_t gemm_grid(const GemmArguments& arguments, int64_t block_m, int64_t block_n, dim3& grid);

}  // namespace ladon::cuda
