// Launch wrappers for gemm_tensor_core.cuh: the tiles, the K split, the layout.
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/gemm_tensor_core.cuh"
#include "kernels/cuda/gemm_tensor_core.hpp"
#include "kernels/cuda/launch.hpp"

namespace ladon::cuda {
namespace tc_gemm {

// The epilogue of a split product: C = activation(alpha (sum of the slices'
// partials, in slice order) + beta C + bias). A thread per column of a row,
// blocks striding over rows (gridDim.y of them), so no index is divided.
constexpr int sum_slices_threads = 128;
__global__ void __launch_bounds__(sum_slices_threads)
    sum_slices_kernel(GemmArguments g, const float* partials, int slices) {
    const int64_t column = int64_t{blockIdx.x} * sum_slices_threads + threadIdx.x;
    if (column >= g.n) return;
    const int64_t slice_floats = g.m * g.n;
    for (int64_t row = blockIdx.y; row < g.m; row += gridDim.y) {
        const float* partial = partials + row * g.n + column;
        float sum = *partial;
        for (int z = 1; z < slices; ++z) sum += partial[z * slice_floats];
        store_output(g, row, column, sum);
    }
}

}  // namespace tc_gemm

namespace {

using mma_pipeline::block_k;
using mma_pipeline::launch_pipelined;

constexpr int64_t multiprocessors = 132;  // an H100 or H200
constexpr int max_splits = 32, min_tiles_per_slice = 4;

int64_t k_tiles_of(int64_t k) { return (k + block_k - 1) / block_k; }

// K in `count` slices of tiles_per_slice whole k-tiles: a request for
// `splits` may give fewer (100 k-tiles in 17: 6 each, 17 slices; in 30: 4
// each, 25 slices).
struct Slicing {
    int count = 1;
    int tiles_per_slice = 1;
};

Slicing slice_k(int64_t k, int64_t splits) {
    const int64_t k_tiles = std::max<int64_t>(k_tiles_of(k), 1);
    const int64_t requested = std::clamp<int64_t>(splits, 1, k_tiles);
    const int64_t per_slice = (k_tiles + requested - 1) / requested;
    return {static_cast<int>((k_tiles + per_slice - 1) / per_slice), static_cast<int>(per_slice)};
}

template <typename T, bool transpose_a, bool transpose_b, bool bf16>
cudaError_t launch_tiles(const GemmArguments& g, tc_gemm::KSlices slices, int slice_count, cudaStream_t stream) {
    using namespace tc_gemm;
    dim3 grid;
    if (const cudaError_t error = gemm_grid(g, T::block_m, T::block_n, grid); error != cudaSuccess || grid.x == 0)
        return error;
    grid.z = static_cast<unsigned>(slice_count);
    if (const cudaError_t error = launch_pipelined<T, ALayout<T, transpose_a, bf16>, BLayout<T, transpose_b, bf16>>(
            gemm_kernel<T, transpose_a, transpose_b, bf16>, grid, stream, g, slices);
        error != cudaSuccess || slice_count == 1)
        return error;
    const dim3 sum_grid(static_cast<unsigned>((g.n + sum_slices_threads - 1) / sum_slices_threads),
                        static_cast<unsigned>(std::min<int64_t>(g.m, 65535)));
    return launch(sum_slices_kernel, sum_grid, dim3(sum_slices_threads), 0, stream, g,
                  static_cast<const float*>(slices.partials), slice_count);
}

// 128 x 128 BF16 tiles with both operands k-major (padded rows of 40 floats)
// take 120 KiB of shared memory: one block per SM. Those products (the dense
// forward's A B^T) take 64 x 64 tiles instead.
template <typename T, bool transpose_a, bool transpose_b, bool bf16>
cudaError_t launch_gemm(const GemmArguments& g, tc_gemm::KSlices slices, int slice_count, cudaStream_t stream) {
    using tc_gemm::ALayout, tc_gemm::BLayout;
    if constexpr (mma_pipeline::resident_blocks<T, ALayout<T, transpose_a, bf16>, BLayout<T, transpose_b, bf16>> >= 2)
        return launch_tiles<T, transpose_a, transpose_b, bf16>(g, slices, slice_count, stream);
    else
        return launch_tiles<mma_pipeline::SmallTiles, transpose_a, transpose_b, bf16>(g, slices, slice_count, stream);
}

template <typename T, bool bf16>
cudaError_t launch_for_layout(const GemmArguments& g, tc_gemm::KSlices slices, int slice_count, cudaStream_t stream) {
    if (g.transpose_a)
        return g.transpose_b ? launch_gemm<T, true, true, bf16>(g, slices, slice_count, stream)
                             : launch_gemm<T, true, false, bf16>(g, slices, slice_count, stream);
    return g.transpose_b ? launch_gemm<T, false, true, bf16>(g, slices, slice_count, stream)
                         : launch_gemm<T, false, false, bf16>(g, slices, slice_count, stream);
}

template <typename T>
cudaError_t launch_for_precision(const GemmArguments& g, MatmulPrecision precision, tc_gemm::KSlices slices,
                                 int slice_count, cudaStream_t stream) {
    return precision == MatmulPrecision::bf16 ? launch_for_layout<T, true>(g, slices, slice_count, stream)
                                              : launch_for_layout<T, false>(g, slices, slice_count, stream);
}

bool aligned16(const float* pointer) { return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0; }

}  // namespace

bool gemm_tensor_core_applies(const GemmArguments& g) {
    return g.k > 0 && g.lda % 4 == 0 && g.ldb % 4 == 0 && aligned16(g.a) && aligned16(g.b);
}

MmaTiles choose_mma_tiles(int64_t m, int64_t n) {
    const int64_t large_blocks = ((m + 127) / 128) * ((n + 127) / 128);
    return m > 64 && n > 64 && large_blocks >= multiprocessors ? MmaTiles::large : MmaTiles::small;
}

int choose_split_k(int64_t m, int64_t n, int64_t k, MmaTiles tiles) {
    if (tiles == MmaTiles::automatic) tiles = choose_mma_tiles(m, n);
    const int64_t blocks = ((m + 63) / 64) * ((n + 63) / 64);
    if (tiles == MmaTiles::large || blocks <= 0 || blocks >= multiprocessors) return 1;
    const int64_t wanted = (multiprocessors + blocks - 1) / blocks;
    const int64_t splits = std::min<int64_t>({wanted, k_tiles_of(k) / min_tiles_per_slice, max_splits});
    if (splits < 2) return 1;
    return slice_k(k, splits).count;
}

std::size_t split_k_bytes(int64_t m, int64_t n, int64_t k, int splits) {
    const int slices = slice_k(k, splits).count;
    return slices < 2 || m <= 0 || n <= 0 ? 0 : std::size_t(slices) * std::size_t(m) * std::size_t(n) * sizeof(float);
}

cudaError_t gemm_tensor_core(const GemmArguments& g, MatmulPrecision precision, cudaStream_t stream, MmaTiles tiles,
                             GemmScratch scratch, int splits) {
    if (precision == MatmulPrecision::fp32 || !gemm_tensor_core_applies(g)) return gemm(g, stream);
    if (tiles == MmaTiles::automatic) tiles = choose_mma_tiles(g.m, g.n);
    if (splits <= 0) splits = choose_split_k(g.m, g.n, g.k, tiles);
    Slicing slicing = slice_k(g.k, splits);
    // Without the scratch for it (or past the grid's 65535 z), one slice.
    if (slicing.count > 1 && (slicing.count > 65535 || scratch.data == nullptr ||
                              scratch.bytes < split_k_bytes(g.m, g.n, g.k, slicing.count)))
        slicing = slice_k(g.k, 1);
    const tc_gemm::KSlices slices{slicing.tiles_per_slice, slicing.count > 1 ? scratch.data : nullptr};
    const int slice_count = slicing.count;
    return tiles == MmaTiles::large
               ? launch_for_precision<mma_pipeline::LargeTiles>(g, precision, slices, slice_count, stream)
               : launch_for_precision<mma_pipeline::SmallTiles>(g, precision, slices, slice_count, stream);
}

}  // namespace ladon::cuda
