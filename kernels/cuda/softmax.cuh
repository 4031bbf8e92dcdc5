#pragma once
// Device code for softmax over channels (kernels/cuda/softmax.hpp). A column
// is the `channels` values of one (n, s), `spatial` floats apart.
//
// Parallel decomposition: `lanes` consecutive threads own one column,
// grid-stride over batch * spatial columns. lanes is a whole warp for
// feature rows (spatial 1) of 32 channels or more: the lanes stride the row,
// coalesced, and meet in shuffle trees for its max, sum and dot. Otherwise
// one thread owns a column, and neighbouring threads read neighbouring s, so
// each pass over the channels is coalesced too. The column index is the same
// for a whole warp, so every lane reaches the shuffles.
#include <cmath>
#include <cstdint>

#include "kernels/cuda/device.hpp"

namespace ladon::cuda::softmax {

constexpr int kWarpSize = 32;
constexpr int threads_per_block = 256;

struct Geometry {
    int64_t columns;  // batch * spatial
    int64_t channels, spatial;
    // Column j starts at (j / spatial) * channels * spatial + j % spatial.
    __device__ int64_t start(int64_t column) const {
        return (column / spatial) * channels * spatial + column % spatial;
    }
};

template <int lanes>
__device__ __forceinline__ float column_sum(float value) {
    if constexpr (lanes > 1) {
#pragma unroll
        for (int offset = lanes / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
    }
    return value;
}

template <int lanes>
__device__ __forceinline__ float column_max(float value) {
    if constexpr (lanes > 1) {
#pragma unroll
        for (int offset = lanes / 2; offset > 0; offset /= 2)
            value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
    }
    return value;
}

template <int lanes>
__global__ void __launch_bounds__(threads_per_block) forward_kernel(Geometry g, const float* x, float* y) {
    static_assert(lanes == 1 || lanes == kWarpSize);
    const int lane = int(threadIdx.x) % lanes;
    const int64_t step = int64_t{gridDim.x} * blockDim.x / lanes;
    for (int64_t column = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) / lanes; column < g.columns;
         column += step) {
        const float* in = x + g.start(column);
        float* out = y + g.start(column);
        float top = -INFINITY;
        for (int64_t c = lane; c < g.channels; c += lanes) top = fmaxf(top, in[c * g.spatial]);
        top = column_max<lanes>(top);
        float sum = 0.0f;
        for (int64_t c = lane; c < g.channels; c += lanes) sum += expf(in[c * g.spatial] - top);
        const float inverse = 1.0f / column_sum<lanes>(sum);
        for (int64_t c = lane; c < g.channels; c += lanes) out[c * g.spatial] = expf(in[c * g.spatial] - top) * inverse;
    }
}

// grad_x += y * (grad_y - sum_c grad_y * y), per column.
template <int lanes>
__global__ void __launch_bounds__(threads_per_block)
    backward_kernel(Geometry g, const float* y, const float* grad_y, float* grad_x) {
    static_assert(lanes == 1 || lanes == kWarpSize);
    const int lane = int(threadIdx.x) % lanes;
    const int64_t step = int64_t{gridDim.x} * blockDim.x / lanes;
    for (int64_t column = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) / lanes; column < g.columns;
         column += step) {
        const int64_t start = g.start(column);
        float dot = 0.0f;
        for (int64_t c = lane; c < g.channels; c += lanes)
            dot += grad_y[start + c * g.spatial] * y[start + c * g.spatial];
        dot = column_sum<lanes>(dot);
        for (int64_t c = lane; c < g.channels; c += lanes) {
            const int64_t i = start + c * g.spatial;
            grad_x[i] += y[i] * (grad_y[i] - dot);
        }
    }
}

}  // namespace ladon::cuda::softmax
