// Launch wrapper for gemm_tensor_core.cuh.
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/gemm_tensor_core.cuh"
#include "kernels/cuda/gemm_tensor_core.hpp"
#include "kernels/cuda/launch.hpp"

namespace ladon::cuda {
namespace {

using mma_pipeline::launch_pipelined;

template <typename T, bool transpose_a, bool transpose_b, bool bf16>
cudaError_t launch_gemm(const GemmArguments& g, cudaStream_t stream) {
    using namespace tc_gemm;
    dim3 grid;
    if (const cudaError_t error = gemm_grid(g, T::block_m, T::block_n, grid); error != cudaSuccess || grid.x == 0)
        return error;
    return launch_pipelined<T, ALayout<T, transpose_a, bf16>, BLayout<T, transpose_b, bf16>>(
        gemm_kernel<T, transpose_a, transpose_b, bf16>, grid, stream, g);
}

template <typename T, bool bf16>
cudaError_t launch_for_layout(const GemmArguments& g, cudaStream_t stream) {
    if (g.transpose_a)
        return g.transpose_b ? launch_gemm<T, true, true, bf16>(g, stream)
                             : launch_gemm<T, true, false, bf16>(g, stream);
    return g.transpose_b ? launch_gemm<T, false, true, bf16>(g, stream) : launch_gemm<T, false, false, bf16>(g, stream);
}

template <typename T>
cudaError_t launch_for_precision(const GemmArguments& g, MatmulPrecision precision, cudaStream_t stream) {
    return precision == MatmulPrecision::bf16 ? launch_for_layout<T, true>(g, stream)
                                              : launch_for_layout<T, false>(g, stream);
}

bool aligned16(const float* pointer) { return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0; }

}  // namespace

bool gemm_tensor_core_applies(const GemmArguments& g) {
    return g.k > 0 && g.lda % 4 == 0 && g.ldb % 4 == 0 && aligned16(g.a) && aligned16(g.b);
}

MmaTiles choose_mma_tiles(int64_t m, int64_t n) {
    constexpr int64_t multiprocessors = 132;
    const int64_t large_blocks = ((m + 127) / 128) * ((n + 127) / 128);
    return m > 64 && n > 64 && large_blocks >= multiprocessors ? MmaTiles::large : MmaTiles::small;
}

cudaError_t gemm_tensor_core(const GemmArguments& g, MatmulPrecision precision, cudaStream_t stream,
                             MmaTiles tiles) {
    if (precision == MatmulPrecision::fp32 || !gemm_tensor_core_applies(g)) return gemm(g, stream);
    if (tiles == MmaTiles::automatic) tiles = choose_mma_tiles(g.m, g.n);
    return tiles == MmaTiles::large ? launch_for_precision<mma_pipeline::LargeTiles>(g, precision, stream)
                                    : launch_for_precision<mma_pipeline::SmallTiles>(g, precision, stream);
}

}  // namespace ladon::cuda
