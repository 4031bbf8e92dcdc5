// Launch wrappers for softmax.cuh.
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/launch.hpp"
#include "kernels/cuda/softmax.cuh"
#include "kernels/cuda/softmax.hpp"

namespace ladon::cuda {
namespace {

using softmax::kWarpSize;
using softmax::threads_per_block;

constexpr int64_t max_blocks = 4096;  // grid-stride: enough to fill a large GPU several times over

dim3 grid_for(int64_t threads) {
    return dim3(static_cast<unsigned>(
        std::clamp<int64_t>((threads + threads_per_block - 1) / threads_per_block, 1, max_blocks)));
}

bool valid(int64_t batch, int64_t channels, int64_t spatial) { return batch >= 0 && channels >= 1 && spatial >= 1; }

// A warp per column for feature rows long enough to keep its lanes busy.
bool warp_per_column(const softmax::Geometry& g) { return g.spatial == 1 && g.channels >= kWarpSize; }

}  // namespace

cudaError_t softmax_forward(int64_t batch, int64_t channels, int64_t spatial, const float* x, float* y,
                            cudaStream_t stream) {
    if (!valid(batch, channels, spatial)) return cudaErrorInvalidValue;
    const softmax::Geometry g{batch * spatial, channels, spatial};
    if (g.columns == 0) return cudaSuccess;
    if (warp_per_column(g))
        return launch(softmax::forward_kernel<kWarpSize>, grid_for(g.columns * kWarpSize), dim3(threads_per_block), 0,
                      stream, g, x, y);
    return launch(softmax::forward_kernel<1>, grid_for(g.columns), dim3(threads_per_block), 0, stream, g, x, y);
}

cudaError_t softmax_backward(int64_t batch, int64_t channels, int64_t spatial, const float* y, const float* grad_y,
                             float* grad_x, cudaStream_t stream) {
    if (!valid(batch, channels, spatial)) return cudaErrorInvalidValue;
    const softmax::Geometry g{batch * spatial, channels, spatial};
    if (g.columns == 0) return cudaSuccess;
    if (warp_per_column(g))
        return launch(softmax::backward_kernel<kWarpSize>, grid_for(g.columns * kWarpSize), dim3(threads_per_block), 0,
                      stream, g, y, grad_y, grad_x);
    return launch(softmax::backward_kernel<1>, grid_for(g.columns), dim3(threads_per_block), 0, stream, g, y, grad_y,
                  grad_x);
}

}  // namespace ladon::cuda
