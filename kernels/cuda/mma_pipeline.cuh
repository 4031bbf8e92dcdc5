#pragma once
// The block-level loop every tensor-core kernel shares (the GEMM of
// gemm_tensor_core.cuh, the convolutions of conv2d_tensor_core.cuh).
//
// A block owns a tile of C = A[M, K] x B[K, N] (64 x 64 or 128 x 128, see
// Tiling), its warps each a part of it as 16 x 8 mma tiles. K goes in tiles
// of 32 through `stages` shared buffers: while the warps multiply tile t, the
// copies of tile t + 2 fly. Kernels differ only in how they copy a tile in (a loader
// issuing cp.async into the tile's layout) and in their epilogue.
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/launch.hpp"
#include "kernels/cuda/tensor_core.cuh"

namespace ladon::cuda::mma_pipeline {

// A block's tile of C and its warps: BlockM x BlockN in WarpsM x WarpsN warps,
// each warp owning (BlockM / WarpsM) x (BlockN / WarpsN) as 16 x 8 mma tiles;
// K in tiles of 32. MinBlocks is the occupancy the launch bounds ask for
// (it caps the registers ptxas may use: 65536 / (threads x MinBlocks)).
template <int BlockM, int BlockN, int WarpsM, int WarpsN, int MinBlocks>
struct Tiling {
    static constexpr int block_m = BlockM, block_n = BlockN, block_k = 32;
    static constexpr int warps_m = WarpsM, warps_n = WarpsN, warps = WarpsM * WarpsN, threads = 32 * warps;
    static constexpr int warp_m = BlockM / WarpsM, warp_n = BlockN / WarpsN;
    static constexpr int mma_rows = warp_m / 16, mma_columns = warp_n / 8;
    static constexpr int min_blocks = MinBlocks;
    // One lane's sums: its four elements of each of the warp's mma tiles.
    using Sums = float[mma_rows][mma_columns][4];
};

// 64 x 64 in 4 warps of 32 x 32 (2 x 4 mma tiles): small layers, many blocks.
using SmallTiles = Tiling<64, 64, 2, 2, 4>;
// 128 x 128 in 8 warps of 64 x 32 (4 x 4 mma tiles): twice the FLOPs per
// byte of shared memory read; 2 blocks per SM.
using LargeTiles = Tiling<128, 128, 2, 4, 2>;

constexpr int block_k = 32;
constexpr int stages = 3;

// Shared tiles hold FP32 as the loaders wrote it, in one of two layouts:
// "k-major" rows of 32 k values (A as [M, K], B as [N, K]) or "mn-major" rows
// of `extent` (the block's M or N: 64 or 128) values (A as [K, M], B as [K, N]). The padding makes the
// fragment loads conflict-free: a TF32 fragment has lane (g, t) read row g,
// k t, so k-major rows need a stride of 4 mod 32 (banks 4g + t) and mn-major
// rows 8 mod 32 (8t + g); BF16 reads k pairs (2t, 2t+1), as 8-byte loads from
// k-major rows (stride 8 mod 32: banks 8g + 2t) or two loads from mn-major
// rows (stride 4 mod 32). Strides stay multiples of 4 floats, so every row
// starts 16-byte aligned. A warp writing 32 consecutive floats of one row
// (the gathering loaders) is conflict-free in either layout.
template <bool k_major, bool bf16, int extent>
struct TileLayout {
    static constexpr int rows = k_major ? extent : block_k;
    static constexpr int columns = k_major ? block_k : extent;
    static constexpr int stride = columns + (k_major == bf16 ? 8 : 4);
    static constexpr int floats = rows * stride;
    // Element (mn, k) of the tile.
    __device__ static int at(int mn, int k) { return k_major ? mn * stride + k : k * stride + mn; }
};

// Dynamic shared memory of a kernel with these layouts (above 48 KiB: the
// launch needs the opt-in attribute).
template <typename ALayout, typename BLayout>
constexpr std::size_t shared_bytes = sizeof(float) * stages * (ALayout::floats + BLayout::floats);

// The blocks per SM that a kernel's __launch_bounds__ ask for: the tiling's
// min_blocks, or fewer where its shared memory (the tiles, plus
// `static_bytes` of its own; 228 KiB per SM on sm_90, 1 KiB of it reserved
// per block) holds fewer: 64 x 64 BF16 tiles with both operands k-major fit
// 3 blocks, not 4. Asking for more than fit would only cap the registers.
template <typename T, typename ALayout, typename BLayout, std::size_t static_bytes = 0>
constexpr int resident_blocks = [] {
    const int by_shared_memory = static_cast<int>(228 * 1024 / (shared_bytes<ALayout, BLayout> + static_bytes + 1024));
    return by_shared_memory < T::min_blocks ? by_shared_memory : T::min_blocks;
}();

// Issues the cp.async copies of `rows` x `columns` of a row-major matrix
// (leading dimension ld) from (row0, column0) into a tile whose rows run
// along the matrix rows, in 16-byte chunks: each row's part past `columns`
// zero-filled, rows past `rows` all zero. Needs ld and column0 multiples of 4
// and a 16-byte-aligned matrix.
template <typename T, typename Layout>
__device__ __forceinline__ void copy_rows_vectorised(float* tile, const float* matrix, int64_t ld, int64_t rows,
                                                     int64_t columns, int64_t row0, int64_t column0) {
    // A thread keeps one chunk column and walks rows: its bounds on columns
    // and its offset are computed once (64-bit math per chunk spills the
    // 128 x 128 tiles).
    constexpr int chunks_per_row = Layout::columns / 4;
    static_assert(T::threads % chunks_per_row == 0, "every pass covers whole rows");
    constexpr int rows_per_pass = T::threads / chunks_per_row;
    const int first_row = static_cast<int>(threadIdx.x) / chunks_per_row;
    const int c = static_cast<int>(threadIdx.x) % chunks_per_row * 4;
    const int64_t left = columns - (column0 + c);
    const int valid_columns = left <= 0 ? 0 : (left >= 4 ? 4 : static_cast<int>(left));
    const int64_t rows_left = rows - row0, offset = row0 * ld + column0 + c;
#pragma unroll
    for (int r = first_row; r < Layout::rows; r += rows_per_pass) {
        const int valid = r < rows_left ? valid_columns : 0;
        tensor_core::cp_async<16>(tile + r * Layout::stride + c, valid > 0 ? matrix + offset + r * ld : matrix,
                                  valid * 4);
    }
}

// Issues one 4-byte cp.async per element of a k-major tile (rows of 32 k)
// whose element (row, k) lies at data[column_offset(k) + row * row_stride]:
// lane l copies column k0 + l of rows warp, warp + T::warps, ..., so column_offset
// (which may divide) runs once per thread and tile, and each warp's copy
// writes 32 consecutive floats. Elements at row >= rows or k >= k_end are 0.
template <typename T, typename Layout, typename ColumnOffset>
__device__ __forceinline__ void copy_k_major_gathered(float* tile, const float* data, int64_t row_stride,
                                                      int64_t rows, int64_t row0, int64_t k0, int64_t k_end,
                                                      ColumnOffset column_offset) {
    static_assert(Layout::columns == 32, "one lane per k");
    const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
    const int64_t k = k0 + lane;
    const bool k_valid = k < k_end;
    const float* const column = data + (k_valid ? column_offset(k) : 0);
#pragma unroll 4
    for (int r = warp; r < Layout::rows; r += T::warps) {
        const bool valid = k_valid && row0 + r < rows;
        tensor_core::cp_async<4>(tile + r * Layout::stride + lane, valid ? column + (row0 + r) * row_stride : data,
                                 valid ? 4 : 0);
    }
}

// The warps' mma work on one k-tile in shared memory. Per k step a lane
// holds all its B fragments and one row of A fragments at a time (B's 2 x
// mma_columns registers plus A's 4, beside the sums), which keeps the 128 x
// 128 tiles within 128 registers.
template <typename T, typename ALayout, typename BLayout, bool bf16>
__device__ __forceinline__ void multiply_tile(const float* a, const float* b, int warp_row, int warp_column,
                                              typename T::Sums& sums) {
    const int lane = static_cast<int>(threadIdx.x % 32);
    const int group = lane / 4, thread_in_group = lane % 4;
    constexpr int mma_k = bf16 ? 16 : 8;
    // Unrolled, ptxas overlaps the next step's BF16 loads with this step's
    // mmas, which costs the 128 x 128 tiles a few spilled registers.
    [[maybe_unused]] constexpr int unrolled_steps = bf16 && T::warps > 4 ? 1 : block_k / mma_k;
#pragma unroll(unrolled_steps)
    for (int k = 0; k < block_k; k += mma_k) {
        std::uint32_t b_fragments[T::mma_columns][2];
#pragma unroll
        for (int j = 0; j < T::mma_columns; ++j) {
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
        for (int i = 0; i < T::mma_rows; ++i) {
            std::uint32_t a_fragment[4];
            const int m = warp_row + i * 16 + group;
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int row = m + 8 * (r & 1);
                if constexpr (bf16) {
                    const int column = k + 2 * thread_in_group + 8 * (r >> 1);
                    a_fragment[r] =
                        tensor_core::pack_bf16x2(a[ALayout::at(row, column)], a[ALayout::at(row, column + 1)]);
                } else {
                    a_fragment[r] = tensor_core::to_tf32(a[ALayout::at(row, k + thread_in_group + 4 * (r >> 1))]);
                }
            }
#pragma unroll
            for (int j = 0; j < T::mma_columns; ++j) {
                if constexpr (bf16)
                    tensor_core::mma_m16n8k16_bf16(sums[i][j], a_fragment, b_fragments[j], sums[i][j]);
                else
                    tensor_core::mma_m16n8k8_tf32(sums[i][j], a_fragment, b_fragments[j], sums[i][j]);
            }
        }
    }
}

// Accumulates the block's tile over k_tiles tiles of K into `sums`.
// issue_a(float* tile, int t) and issue_b(...) issue the cp.async copies of
// A's and B's k-tile t (every thread calls them; they must zero-fill what
// lies outside the operand). `shared` is the kernel's dynamic shared memory,
// shared_bytes<ALayout, BLayout> of it. Each sum is one lane's FP32 chain in
// a fixed k order: deterministic.
template <typename T, typename ALayout, typename BLayout, bool bf16, typename IssueA, typename IssueB>
__device__ __forceinline__ void multiply(float* shared, int k_tiles, IssueA issue_a, IssueB issue_b,
                                         typename T::Sums& sums) {
    float* const a_tiles = shared;
    float* const b_tiles = shared + stages * ALayout::floats;
    const auto issue = [&](int tile) {
        issue_a(a_tiles + tile % stages * ALayout::floats, tile);
        issue_b(b_tiles + tile % stages * BLayout::floats, tile);
    };
    const int warp = static_cast<int>(threadIdx.x / 32);
    const int warp_row = warp / T::warps_n * T::warp_m, warp_column = warp % T::warps_n * T::warp_n;

    for (int tile = 0; tile < stages - 1; ++tile) {
        if (tile < k_tiles) issue(tile);
        tensor_core::cp_async_commit();
    }
    for (int tile = 0; tile < k_tiles; ++tile) {
        tensor_core::cp_async_wait<stages - 2>();
        __syncthreads();  // tile `tile` is in for every thread; tile - 1's buffer is free
        if (tile + stages - 1 < k_tiles) issue(tile + stages - 1);
        tensor_core::cp_async_commit();
        multiply_tile<T, ALayout, BLayout, bf16>(a_tiles + tile % stages * ALayout::floats,
                                              b_tiles + tile % stages * BLayout::floats, warp_row, warp_column, sums);
    }
    tensor_core::cp_async_wait<0>();  // the empty groups of the last tiles
}

// Calls store(row, column, sum) for each of the lane's sums, row and column
// within the block's tile (the caller checks the matrix bounds).
template <typename T, typename Store>
__device__ __forceinline__ void for_each_sum(const typename T::Sums& sums, Store store) {
    const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
    const int group = lane / 4, thread_in_group = lane % 4;
    const int warp_row = warp / T::warps_n * T::warp_m, warp_column = warp % T::warps_n * T::warp_n;
#pragma unroll
    for (int i = 0; i < T::mma_rows; ++i)
#pragma unroll
        for (int j = 0; j < T::mma_columns; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r)
                store(warp_row + i * 16 + group + 8 * (r >> 1), warp_column + j * 8 + 2 * thread_in_group + (r & 1),
                      sums[i][j][r]);
}

}  // namespace ladon::cuda::mma_pipeline

namespace ladon::cuda::mma_pipeline {

// Launches a pipelined kernel of tiling T with its dynamic shared memory
// (above 48 KiB: the opt-in attribute first). Host code.
template <typename T, typename ALayout, typename BLayout, std::size_t static_bytes = 0, typename Kernel,
          typename... Arguments>
cudaError_t launch_pipelined(Kernel kernel, dim3 grid, cudaStream_t stream, Arguments... arguments) {
    constexpr std::size_t bytes = shared_bytes<ALayout, BLayout>;
    static_assert(bytes > 48 * 1024, "the opt-in below is needed only above 48 KiB");
    static_assert(resident_blocks<T, ALayout, BLayout, static_bytes> >= 2, "every kernel keeps 2 blocks per SM");
    if (const cudaError_t error = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int{bytes});
        error != cudaSuccess)
        return error;
    return launch(kernel, grid, dim3(T::threads), bytes, stream, arguments...);
}

}  // namespace ladon::cuda::mma_pipeline
