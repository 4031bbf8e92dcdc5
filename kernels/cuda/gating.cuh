#pragma once
// Device code for global_avg_pool, multiply and mixture (kernels/cuda/gating.hpp):
// an elementwise kernel for the outputs and input gradients that map one to
// one, and a row-reduction kernel for those that sum a row (a plane's mean, a
// gate's gradient).
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/ops.hpp"

namespace ladon::cuda::gating {

constexpr int kWarpSize = 32;
constexpr int threads_per_block = 256;

// One thread per element, grid-stride.
template <typename Op>
__global__ void __launch_bounds__(threads_per_block) elementwise_kernel(int64_t count, Op op) {
    const int64_t stride = int64_t{gridDim.x} * blockDim.x;
    for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < count; i += stride) op(i);
}

__device__ __forceinline__ float warp_sum(float value) {
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
    return value;
}

// Row reductions: `lanes` consecutive threads (1, or a whole warp for rows of
// 32 floats or more) own one row of rows.length terms, grid-stride over
// rows.count rows. Each lane sums terms lane, lane + lanes, ...; the warp's
// partials then meet in a shuffle tree and lane 0 stores. The row index is
// the same for a whole warp, so every lane reaches the shuffles.
template <int lanes, typename Rows>
__global__ void __launch_bounds__(threads_per_block) row_sum_kernel(Rows rows) {
    static_assert(lanes == 1 || lanes == kWarpSize);
    const int lane = int(threadIdx.x) % lanes;
    const int64_t first = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) / lanes;
    const int64_t step = int64_t{gridDim.x} * blockDim.x / lanes;
    for (int64_t row = first; row < rows.count; row += step) {
        float partial = 0.0f;
        for (int64_t i = lane; i < rows.length; i += lanes) partial += rows.term(row, i);
        if constexpr (lanes == kWarpSize) partial = warp_sum(partial);
        if (lane == 0) rows.store(row, partial);
    }
}

// ------------------------------------------------------------ global_avg_pool
struct PlaneMeans {  // y[p] = mean of x's row p
    int64_t count, length;
    float scale;
    const float* x;
    float* y;
    __device__ float term(int64_t row, int64_t i) const { return x[row * length + i]; }
    __device__ void store(int64_t row, float sum) const { y[row] = sum * scale; }
};

struct SpreadMean {  // grad_x[p, s] += grad_y[p] / spatial
    int64_t spatial;
    float scale;
    const float* grad_y;
    float* grad_x;
    __device__ void operator()(int64_t i) const { grad_x[i] += grad_y[i / spatial] * scale; }
};

// ------------------------------------------------------------------- multiply
struct ScaleRows {  // y[p, s] = a[p] * b[p, s]
    int64_t spatial;
    const float *a, *b;
    float* y;
    __device__ void operator()(int64_t i) const { y[i] = a[i / spatial] * b[i]; }
};

struct ScaleRowsBackward {  // grad_b[p, s] += grad_y[p, s] * a[p]
    int64_t spatial;
    const float *a, *grad_y;
    float* grad_b;
    __device__ void operator()(int64_t i) const { grad_b[i] += grad_y[i] * a[i / spatial]; }
};

struct RowDots {  // grad_a[p] += sum_s grad_y[p, s] * b[p, s]
    int64_t count, length;
    const float *grad_y, *b;
    float* grad_a;
    __device__ float term(int64_t row, int64_t i) const { return grad_y[row * length + i] * b[row * length + i]; }
    __device__ void store(int64_t row, float sum) const { grad_a[row] += sum; }
};

// -------------------------------------------------------------------- mixture
// The experts' pointers travel by value, in the kernel's arguments.
struct Experts {
    const float* values[ops::max_mixture_experts];
    float* gradients[ops::max_mixture_experts];  // entries nullable
    int64_t count;
};

struct MixExperts {  // y[n, f] = sum_e gate[n, e] * experts[e][n, f], e in order
    int64_t features;
    const float* gate;
    Experts experts;
    float* y;
    __device__ void operator()(int64_t i) const {
        const float* weights = gate + (i / features) * experts.count;
        float sum = weights[0] * experts.values[0][i];
        for (int64_t e = 1; e < experts.count; ++e) sum += weights[e] * experts.values[e][i];
        y[i] = sum;
    }
};

struct MixExpertsBackward {  // grad_experts[e][n, f] += gate[n, e] * grad_y[n, f]
    int64_t features;
    const float *gate, *grad_y;
    Experts experts;
    __device__ void operator()(int64_t i) const {
        const float* weights = gate + (i / features) * experts.count;
        const float g = grad_y[i];
        for (int64_t e = 0; e < experts.count; ++e)
            if (experts.gradients[e] != nullptr) experts.gradients[e][i] += weights[e] * g;
    }
};

struct GateDots {  // row n * E + e: grad_gate[n, e] += sum_f grad_y[n, f] * experts[e][n, f]
    int64_t count, length;
    const float* grad_y;
    Experts experts;
    float* grad_gate;
    __device__ float term(int64_t row, int64_t i) const {
        const int64_t offset = (row / experts.count) * length + i;
        return grad_y[offset] * experts.values[row % experts.count][offset];
    }
    __device__ void store(int64_t row, float sum) const { grad_gate[row] += sum; }
};

}  // namespace ladon::cuda::gating
