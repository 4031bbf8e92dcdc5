#pragma once
// The block-level loop every tensor-core kernel shares (the GEMM of
// gemm_tensor_core.cuh, the convolutions of conv2d_tensor_core.cuh).
//
// A block owns a 64 x 64 tile of C = A[M, K] x B[K, N]; 4 warps in 2 x 2 own
// 32 x 32 each, as 2 x 4 mma tiles of 16 x 8. K goes in tiles of 32 through
// `stages` shared buffers: while the warps multiply tile t, the copies of
// tile t + 2 fly. Kernels differ only in how they copy a tile in (a loader
// issuing cp.async into the tile's layout) and in their epilogue.
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/tensor_core.cuh"

namespace ladon::cuda::mma_pipeline {

constexpr int block_m = 64, block_n = 64, block_k = 32;
constexpr int warps_m = 2, warps_n = 2, threads_per_block = 32 * warps_m * warps_n;
constexpr int warp_m = block_m / warps_m, warp_n = block_n / warps_n;  // 32 x 32
constexpr int mma_rows = warp_m / 16, mma_columns = warp_n / 8;         // 2 x 4
constexpr int stages = 3;

// One lane's sums: its four elements of each of the warp's 2 x 4 mma tiles.
using Sums = float[mma_rows][mma_columns][4];

// Shared tiles hold FP32 as the loaders wrote it, in one of two layouts:
// "k-major" rows of 32 k values (A as [M, K], B as [N, K]) or "mn-major" rows
// of 64 m or n values (A as [K, M], B as [K, N]). The padding makes the
// fragment loads conflict-free: a TF32 fragment has lane (g, t) read row g,
// k t, so k-major rows need a stride of 4 mod 32 (banks 4g + t) and mn-major
// rows 8 mod 32 (8t + g); BF16 reads k pairs (2t, 2t+1), as 8-byte loads from
// k-major rows (stride 8 mod 32: banks 8g + 2t) or two loads from mn-major
// rows (stride 4 mod 32). Strides stay multiples of 4 floats, so every row
// starts 16-byte aligned. A warp writing 32 consecutive floats of one row
// (the gathering loaders) is conflict-free in either layout.
template <bool k_major, bool bf16>
struct TileLayout {
    static constexpr int rows = k_major ? 64 : block_k;
    static constexpr int columns = k_major ? block_k : 64;
    static constexpr int stride = columns + (k_major == bf16 ? 8 : 4);
    static constexpr int floats = rows * stride;
    // Element (mn, k) of the tile.
    __device__ static int at(int mn, int k) { return k_major ? mn * stride + k : k * stride + mn; }
};

// Dynamic shared memory of a kernel with these layouts (above 48 KiB: the
// launch needs the opt-in attribute).
template <typename ALayout, typename BLayout>
constexpr std::size_t shared_bytes = sizeof(float) * stages * (ALayout::floats + BLayout::floats);

// Issues the cp.async copies of `rows` x `columns` of a row-major matrix
// (leading dimension ld) from (row0, column0) into a tile whose rows run
// along the matrix rows, in 16-byte chunks: each row's part past `columns`
// zero-filled, rows past `rows` all zero. Needs ld and column0 multiples of 4
// and a 16-byte-aligned matrix.
template <typename Layout>
__device__ __forceinline__ void copy_rows_vectorised(float* tile, const float* matrix, int64_t ld, int64_t rows,
                                                     int64_t columns, int64_t row0, int64_t column0) {
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

// Issues one 4-byte cp.async per element of a k-major tile (64 rows of 32 k)
// whose element (row, k) lies at data[column_offset(k) + row * row_stride]:
// lane l copies column k0 + l of rows warp, warp + 4, ..., so column_offset
// (which may divide) runs once per thread and tile, and each warp's copy
// writes 32 consecutive floats. Elements at row >= rows or k >= k_end are 0.
template <typename Layout, typename ColumnOffset>
__device__ __forceinline__ void copy_k_major_gathered(float* tile, const float* data, int64_t row_stride,
                                                      int64_t rows, int64_t row0, int64_t k0, int64_t k_end,
                                                      ColumnOffset column_offset) {
    static_assert(Layout::columns == 32, "one lane per k");
    const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
    const int64_t k = k0 + lane;
    const bool k_valid = k < k_end;
    const float* const column = data + (k_valid ? column_offset(k) : 0);
#pragma unroll 4
    for (int r = warp; r < Layout::rows; r += threads_per_block / 32) {
        const bool valid = k_valid && row0 + r < rows;
        tensor_core::cp_async<4>(tile + r * Layout::stride + lane, valid ? column + (row0 + r) * row_stride : data,
                                 valid ? 4 : 0);
    }
}

// The warps' mma work on one k-tile in shared memory.
template <typename ALayout, typename BLayout, bool bf16>
__device__ __forceinline__ void multiply_tile(const float* a, const float* b, int warp_row, int warp_column,
                                              Sums& sums) {
    const int lane = static_cast<int>(threadIdx.x % 32);
    const int group = lane / 4, thread_in_group = lane % 4;
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
                    a_fragments[i][r] =
                        tensor_core::pack_bf16x2(a[ALayout::at(row, column)], a[ALayout::at(row, column + 1)]);
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

// Accumulates the block's tile over k_tiles tiles of K into `sums`.
// issue_a(float* tile, int t) and issue_b(...) issue the cp.async copies of
// A's and B's k-tile t (every thread calls them; they must zero-fill what
// lies outside the operand). `shared` is the kernel's dynamic shared memory,
// shared_bytes<ALayout, BLayout> of it. Each sum is one lane's FP32 chain in
// a fixed k order: deterministic.
template <typename ALayout, typename BLayout, bool bf16, typename IssueA, typename IssueB>
__device__ __forceinline__ void multiply(float* shared, int k_tiles, IssueA issue_a, IssueB issue_b, Sums& sums) {
    float* const a_tiles = shared;
    float* const b_tiles = shared + stages * ALayout::floats;
    const auto issue = [&](int tile) {
        issue_a(a_tiles + tile % stages * ALayout::floats, tile);
        issue_b(b_tiles + tile % stages * BLayout::floats, tile);
    };
    const int warp = static_cast<int>(threadIdx.x / 32);
    const int warp_row = warp / warps_n * warp_m, warp_column = warp % warps_n * warp_n;

    for (int tile = 0; tile < stages - 1; ++tile) {
        if (tile < k_tiles) issue(tile);
        tensor_core::cp_async_commit();
    }
    for (int tile = 0; tile < k_tiles; ++tile) {
        tensor_core::cp_async_wait<stages - 2>();
        __syncthreads();  // tile `tile` is in for every thread; tile - 1's buffer is free
        if (tile + stages - 1 < k_tiles) issue(tile + stages - 1);
        tensor_core::cp_async_commit();
        multiply_tile<ALayout, BLayout, bf16>(a_tiles + tile % stages * ALayout::floats,
                                              b_tiles + tile % stages * BLayout::floats, warp_row, warp_column, sums);
    }
    tensor_core::cp_async_wait<0>();  // the empty groups of the last tiles
}

// Calls store(row, column, sum) for each of the lane's sums, row and column
// within the block's 64 x 64 tile (the caller checks the matrix bounds).
template <typename Store>
__device__ __forceinline__ void for_each_sum(const Sums& sums, Store store) {
    const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
    const int group = lane / 4, thread_in_group = lane % 4;
    const int warp_row = warp / warps_n * warp_m, warp_column = warp % warps_n * warp_n;
#pragma unroll
    for (int i = 0; i < mma_rows; ++i)
#pragma unroll
        for (int j = 0; j < mma_columns; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r)
                store(warp_row + i * 16 + group + 8 * (r >> 1), warp_column + j * 8 + 2 * thread_in_group + (r & 1),
                      sums[i][j][r]);
}

}  // namespace ladon::cuda::mma_pipeline
