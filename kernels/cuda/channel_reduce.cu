// Launch wrappers for channel_reduce.cuh's channel sums.
#include "kernels/cuda/channel_reduce.cuh"
#include "kernels/cuda/channel_reduce.hpp"
#include "kernels/cuda/device.hpp"
#include "kernels/cuda/launch.hpp"

namespace ladon::cuda {

std::size_t channel_sums_workspace_bytes(int64_t batch, int64_t channels, int64_t spatial) {
    if (!channel_reduce::fits(batch, channels, spatial) || batch * channels * spatial == 0) return 0;
    const auto l = channel_reduce::make_layout(batch, channels, spatial, 1);
    return l.blocks_per_channel > 1 ? std::size_t(channels) * std::size_t(l.blocks_per_channel) * sizeof(float) : 0;
}

cudaError_t add_channel_sums(int64_t batch, int64_t channels, int64_t spatial, const float* x, float* out,
                             float* workspace, cudaStream_t stream) {
    namespace cr = channel_reduce;
    if (!cr::fits(batch, channels, spatial)) return cudaErrorInvalidValue;
    if (batch * channels * spatial == 0) return cudaSuccess;
    return cr::with_width(cr::vector_width(spatial, x), [&](auto width) {
        constexpr int W = decltype(width)::value;
        const cr::Layout l = cr::make_layout(batch, channels, spatial, W, workspace ? cr::target_blocks : 1);
        const dim3 block(cr::threads_per_block);
        if (l.blocks_per_channel == 1)
            return launch(cr::chunk_sums_kernel<W, true>, cr::grid(l), block, 0, stream, l, x, out);
        cudaError_t error = launch(cr::chunk_sums_kernel<W, false>, cr::grid(l), block, 0, stream, l, x, workspace);
        if (error != cudaSuccess) return error;
        const unsigned blocks = unsigned((channels + cr::threads_per_block - 1) / cr::threads_per_block);
        return launch(cr::add_channel_totals_kernel<>, dim3(blocks), block, 0, stream, int(channels),
                      l.blocks_per_channel, static_cast<const float*>(workspace), out);
    });
}

}  // namespace ladon::cuda
