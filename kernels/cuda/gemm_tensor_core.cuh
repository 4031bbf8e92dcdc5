#pragma once
// Device code of the tensor-core GEMM (gemm_tensor_core.cu): the same
// contract as sgemm_kernel (gemm.hpp), on mma.sync TF32 or BF16 with FP32
// accumulation, through the shared pipeline of mma_pipeline.cuh.
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/mma_pipeline.cuh"

namespace ladon::cuda::tc_gemm {

using namespace mma_pipeline;

// Tile layouts follow the operands' own: A [M, K] and B [N, K] are k-major,
// so cp.async moves 16-byte chunks of their rows.
template <typename T, bool transpose_a, bool bf16>
using ALayout = TileLayout<!transpose_a, bf16, T::block_m>;
template <typename T, bool transpose_b, bool bf16>
using BLayout = TileLayout<transpose_b, bf16, T::block_n>;

// How K is sliced across the grid's z: block z sums k-tiles [z * tiles_per_slice,
// (z + 1) * tiles_per_slice). With one slice the epilogue writes C; with
// more, each block writes its raw sums to partials[z][M][N] and
// sum_slices_kernel finishes.
struct KSlices {
    int tiles_per_slice = 0;
    float* partials = nullptr;
};

// C(row, column) = activation(alpha sum + beta C + bias): the epilogue of
// both kernels below. beta == 0 never reads C.
__device__ __forceinline__ void store_output(const GemmArguments& g, int64_t row, int64_t column, float sum) {
    float* const out = g.c + row * g.ldc + column;
    float value = g.alpha * sum;
    if (g.beta != 0.0f) value += g.beta * *out;
    if (g.bias != nullptr) value += g.bias[column];
    *out = elementwise::activate(g.activation, g.negative_slope, value);
}

// C = alpha op(A) op(B) + beta C, + bias, activation. Requires lda and ldb
// multiples of 4 and 16-byte-aligned A and B (the host falls back to the
// SIMT kernel otherwise). Each output is one lane's FP32 sum in a fixed k
// order: deterministic.
template <typename T, bool transpose_a, bool transpose_b, bool bf16>
__global__ void __launch_bounds__(T::threads,
                                  (resident_blocks<T, ALayout<T, transpose_a, bf16>, BLayout<T, transpose_b, bf16>>))
    gemm_kernel(GemmArguments g, KSlices slices) {
    using A = ALayout<T, transpose_a, bf16>;
    using B = BLayout<T, transpose_b, bf16>;
    LADON_DYNAMIC_SHARED(float, shared);
    const int64_t row0 = int64_t{blockIdx.y} * T::block_m, column0 = int64_t{blockIdx.x} * T::block_n;
    const int64_t k_begin = int64_t{blockIdx.z} * slices.tiles_per_slice * block_k;
    const int64_t k_end = k_begin + int64_t{slices.tiles_per_slice} * block_k < g.k
                              ? k_begin + int64_t{slices.tiles_per_slice} * block_k
                              : g.k;
    const int k_tiles = static_cast<int>((k_end - k_begin + block_k - 1) / block_k);
    // Bounded by k_end, the copies zero-fill past the slice.
    const auto issue_a = [&](float* tile, int t) {
        const int64_t k0 = k_begin + int64_t{t} * block_k;
        if (transpose_a)
            copy_rows_vectorised<T, A>(tile, g.a, g.lda, k_end, g.m, k0, row0);
        else
            copy_rows_vectorised<T, A>(tile, g.a, g.lda, g.m, k_end, row0, k0);
    };
    const auto issue_b = [&](float* tile, int t) {
        const int64_t k0 = k_begin + int64_t{t} * block_k;
        if (transpose_b)
            copy_rows_vectorised<T, B>(tile, g.b, g.ldb, g.n, k_end, column0, k0);
        else
            copy_rows_vectorised<T, B>(tile, g.b, g.ldb, k_end, g.n, k0, column0);
    };
    typename T::Sums sums = {};
    multiply<T, A, B, bf16>(shared, k_tiles, issue_a, issue_b, sums);

    float* const partials = slices.partials == nullptr ? nullptr : slices.partials + int64_t{blockIdx.z} * g.m * g.n;
    for_each_sum<T>(sums, [&](int r, int c, float sum) {
        const int64_t row = row0 + r, column = column0 + c;
        if (row >= g.m || column >= g.n) return;
        if (partials != nullptr) {
            partials[row * g.n + column] = sum;
            return;
        }
        store_output(g, row, column, sum);
    });
}

}  // namespace ladon::cuda::tc_gemm
