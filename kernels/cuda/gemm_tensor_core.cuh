#pragma once
// Device code of the tensor-core GEMM (gemm_tensor_core.cu): the same
// contract as sgemm_kernel (gemm.hpp), on mma.sync TF32 or BF16 with FP32
// accumulation, fed by a three-stage cp.async pipeline.
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/tensor_core.cuh"

namespace ladon::cuda::tc_gemm {

// A block owns a 64 x 64 tile of C; 4 warps in 2 x 2 own 32 x 32 each, as
// 2 x 4 mma tiles of 16 x 8. K goes in tiles of 32 through `stages` shared
// buffers: while the warps multiply tile t, the copies of tile t + 2 fly.
constexpr int block_m = 64, block_n = 64, block_k = 32;
constexpr int warps_m = 2, warps_n = 2, threads_per_block = 32 * warps_m * warps_n;
constexpr int warp_m = block_m / warps_m, warp_n = block_n / warps_n;  // 32 x 32
constexpr int mma_rows = warp_m / 16, mma_columns = warp_n / 8;         // 2 x 4
constexpr int stages = 3;

// Shared tiles hold FP32 in the layout global memory has, so cp.async moves
// 16-byte chunks: "k-major" rows of 32 k values (A stored [M, K], B stored
// [N, K]) or "mn-major" rows of 64 m or n values (A [K, M], B [K, N]). The
// padding makes the fragment loads conflict-free: a TF32 fragment has lane
// (g, t) read row g, k t, so k-major rows need a stride of 4 mod 32 (banks
// 4g + t) and mn-major rows 8 mod 32 (8t + g); BF16 reads k pairs (2t, 2t+1),
// as 8-byte loads from k-major rows (stride 8 mod 32: banks 8g + 2t) or two
// loads from mn-major rows (stride 4 mod 32). Strides stay multiples of 4
// floats, so every row starts 16-byte aligned.
template <bool k_major, bool bf16>
struct TileLayout {
    static constexpr int rows = k_major ? 64 : block_k;
    static constexpr int columns = k_major ? block_k : 64;
    static constexpr int stride = columns + (k_major == bf16 ? 8 : 4);
    static constexpr int floats = rows * stride;
    // Element (mn, k) of the tile.
    __device__ static int at(int mn, int k) { return k_major ? mn * stride + k : k * stride + mn; }
};

// Issues the cp.async copies of one operand's tile: `rows` x `columns` of a
// row-major matrix (leading dimension ld) from (row0, column0), each row's
// part past `columns` zero-filled, rows past `rows` all zero.
template <typename Layout>
__device__ __forceinline__ void copy_tile(float* tile, const float* matrix, int64_t ld, int64_t rows, int64_t columns,
                                          int64_t row0, int64_t column0) {
    constexpr int chunks_per_row = Layout::columns / 4;
    for (int chunk = static_cast<int>(threadIdx.x); chunk < Layout::rows * chunks_per_row;
         chunk += threads_per_block) {
        const int r = chunk / chunks_per_row, c = chunk % chunks_per_row * 4;
        const int64_t row = row0 + r, column = column0 + c;
        const int64_t left = row < rows ? columns - column : 0;
        const int valid = left <= 0 ? 0 : (left >= 4 ? 4 : static_cast<int>(left));
        tensor_core::cp_async<16>(tile + r * Layout::stride + c, valid > 0 ? matrix + row * ld + column : matrix,
                                  valid * 4);
    }
}

// C = alpha op(A) op(B) + beta C, + bias, activation. Requires lda and ldb
// multiples of 4 and 16-byte-aligned A and B (the host falls back to the
// SIMT kernel otherwise). Each output is one lane's FP32 sum in a fixed k
// order: deterministic.
template <bool transpose_a, bool transpose_b, bool bf16>
__global__ void __launch_bounds__(threads_per_block) gemm_kernel(GemmArguments g) {
    using ALayout = TileLayout<!transpose_a, bf16>;  // A [M, K] is k-major
    using BLayout = TileLayout<transpose_b, bf16>;   // B [N, K] is k-major
    LADON_DYNAMIC_SHARED(float, shared);
    float* const a_tiles = shared;
    float* const b_tiles = shared + stages * ALayout::floats;
    const int64_t row0 = int64_t{blockIdx.y} * block_m, column0 = int64_t{blockIdx.x} * block_n;
    const int k_tiles = static_cast<int>((g.k + block_k - 1) / block_k);

    const auto issue = [&](int tile) {
        const int64_t k0 = int64_t{tile} * block_k;
        float* const a = a_tiles + tile % stages * ALayout::floats;
        float* const b = b_tiles + tile % stages * BLayout::floats;
        if (transpose_a)
            copy_tile<ALayout>(a, g.a, g.lda, g.k, g.m, k0, row0);
        else
            copy_tile<ALayout>(a, g.a, g.lda, g.m, g.k, row0, k0);
        if (transpose_b)
            copy_tile<BLayout>(b, g.b, g.ldb, g.n, g.k, column0, k0);
        else
            copy_tile<BLayout>(b, g.b, g.ldb, g.k, g.n, k0, column0);
    };

    const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
    const int group = lane / 4, thread_in_group = lane % 4;
    const int warp_row = warp / warps_n * warp_m, warp_column = warp % warps_n * warp_n;
    float sums[mma_rows][mma_columns][4] = {};

    for (int tile = 0; tile < stages - 1; ++tile) {
        if (tile < k_tiles) issue(tile);
        tensor_core::cp_async_commit();
    }
    for (int tile = 0; tile < k_tiles; ++tile) {
        tensor_core::cp_async_wait<stages - 2>();
        __syncthreads();  // tile `tile` is in for every thread; tile - 1's buffer is free
        if (tile + stages - 1 < k_tiles) issue(tile + stages - 1);
        tensor_core::cp_async_commit();
        const float* const a = a_tiles + tile % stages * ALayout::floats;
        const float* const b = b_tiles + tile % stages * BLayout::floats;
        constexpr int mma_k = bf16 ? 16 : 8;
#pragma unroll
        for (int k = 0; k < block_k; k += mma_k) {
            std::uint32_t a_fragments[mma_rows][4], b_fragments[mma_columns][2];
#pragma unroll
            for (int i = 0; i < mma_rows; ++i) {
                const int m = warp_row + i * 16 + group;
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    const int row = m + 8 * (r & 1);
                    if constexpr (bf16) {
                        const int column = k + 2 * thread_in_group + 8 * (r >> 1);
                        a_fragments[i][r] = tensor_core::pack_bf16x2(a[ALayout::at(row, column)],
                                                                     a[ALayout::at(row, column + 1)]);
                    } else {
                        a_fragments[i][r] = tensor_core::to_tf32(a[ALayout::at(row, k + thread_in_group + 4 * (r >> 1))]);
                    }
                }
            }
#pragma unroll
            for (int j = 0; j < mma_columns; ++j) {
                const int n = warp_column + j * 8 + group;
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    if constexpr (bf16) {
                        const int depth = k + 2 * thread_in_group + 8 * r;
                        b_fragments[j][r] =
                            tensor_core::pack_bf16x2(b[BLayout::at(n, depth)], b[BLayout::at(n, depth + 1)]);
                    } else {
                        b_fragments[j][r] = tensor_core::to_tf32(b[BLayout::at(n, k + thread_in_group + 4 * r)]);
                    }
                }
            }
#pragma unroll
            for (int i = 0; i < mma_rows; ++i)
#pragma unroll
                for (int j = 0; j < mma_columns; ++j) {
                    if constexpr (bf16)
                        tensor_core::mma_m16n8k16_bf16(sums[i][j], a_fragments[i], b_fragments[j], sums[i][j]);
                    else
                        tensor_core::mma_m16n8k8_tf32(sums[i][j], a_fragments[i], b_fragments[j], sums[i][j]);
                }
        }
    }
    tensor_core::cp_async_wait<0>();  // the empty groups of the last tiles

#pragma unroll
    for (int i = 0; i < mma_rows; ++i)
#pragma unroll
        for (int j = 0; j < mma_columns; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int64_t row = row0 + warp_row + i * 16 + group + 8 * (r >> 1);
                const int64_t column = column0 + warp_column + j * 8 + 2 * thread_in_group + (r & 1);
                if (row >= g.m || column >= g.n) continue;
                float* const c = g.c + row * g.ldc + column;
                float value = g.alpha * sums[i][j][r];
                if (g.beta != 0.0f) value += g.beta * *c;  // beta == 0 never reads C
                if (g.bias != nullptr) value += g.bias[column];
                *c = elementwise::activate(g.activation, g.negative_slope, value);
            }
}

}  // namespace ladon::cuda::tc_gemm
