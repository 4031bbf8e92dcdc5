// Launch wrapper for gemm_tensor_core.cuh.
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/gemm_tensor_core.cuh"
#include "kernels/cuda/gemm_tensor_core.hpp"
#include "kernels/cuda/launch.hpp"

namespace ladon::cuda {
namespace {

template <bool transpose_a, bool transpose_b, bool bf16>
cudaError_t launch_gemm(const GemmArguments& g, dim3 grid, cudaStream_t stream) {
    using namespace tc_gemm;
    const auto kernel = gemm_kernel<transpose_a, transpose_b, bf16>;
    constexpr std::size_t bytes = shared_bytes<ALayout<transpose_a, bf16>, BLayout<transpose_b, bf16>>;
    static_assert(bytes > 48 * 1024, "the opt-in below is needed only above 48 KiB");
    if (const cudaError_t error = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int{bytes});
        error != cudaSuccess)
        return error;
    return launch(kernel, grid, dim3(threads_per_block), bytes, stream, g);
}

template <bool bf16>
cudaError_t launch_for_layout(const GemmArguments& g, dim3 grid, cudaStream_t stream) {
    if (g.transpose_a)
        return g.transpose_b ? launch_gemm<true, true, bf16>(g, grid, stream)
                             : launch_gemm<true, false, bf16>(g, grid, stream);
    return g.transpose_b ? launch_gemm<false, true, bf16>(g, grid, stream)
                         : launch_gemm<false, false, bf16>(g, grid, stream);
}

bool aligned16(const float* pointer) { return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0; }

}  // namespace

bool gemm_tensor_core_applies(const GemmArguments& g) {
    return g.k > 0 && g.lda % 4 == 0 && g.ldb % 4 == 0 && aligned16(g.a) && aligned16(g.b);
}

cudaError_t gemm_tensor_core(const GemmArguments& g, MatmulPrecision precision, cudaStream_t stream) {
    using namespace tc_gemm;
    if (precision == MatmulPrecision::fp32 || !gemm_tensor_core_applies(g)) return gemm(g, stream);
    dim3 grid;
    if (const cudaError_t error = gemm_grid(g, block_m, block_n, grid); error != cudaSuccess || grid.x == 0)
        return error;
    return precision == MatmulPrecision::bf16 ? launch_for_layout<true>(g, grid, stream)
                                              : launch_for_layout<false>(g, grid, stream);
}

}  // namespace ladon::cuda
