#pragma once
// Device code for batch normalisation (kernels/cuda/batch_norm.hpp).
//
// Parallel decomposition: channel_reduce.cuh's chunks of each channel, one
// block per chunk. Every pass is two kernels over that grid:
// 1. a sums kernel: each block reduces its chunk and writes its partial sums
//    to the workspace at [channel][block][sum];
// 2. an apply kernel: each block re-adds its channel's partials in the same
//    fixed order (so every block derives the same per-channel coefficients;
//    no float atomics, no "last block" counter) and then maps its chunk.
// Each pass therefore reads its inputs twice and writes its output once.
//
// Accuracy in FP32: the forward sums are of x - K, where K is the channel's
// first value, so a large mean (1e4 with std 1) does not swamp the variance;
// each thread keeps Width x unroll accumulators and the rest of the
// reduction is a fixed pairwise tree.
#include <cstdint>

#include "kernels/cuda/channel_reduce.cuh"
#include "kernels/cuda/device.hpp"

namespace ladon::cuda::batch_norm {

constexpr int forward_sums = 2;   // sum (x - K), sum (x - K)^2
constexpr int backward_sums = 3;  // sum dy, sum (x - mean), sum dy (x - mean)

using channel_reduce::block_chunk;
using channel_reduce::block_sum;
using channel_reduce::channel_totals;
using channel_reduce::for_each_unit;
using channel_reduce::lane;
using channel_reduce::load_units;
using channel_reduce::Layout;
using channel_reduce::threads_per_block;
using channel_reduce::unroll;
using channel_reduce::vector_t;

// Pass 1 forward: partial sums of x - K and (x - K)^2 over the chunk.
template <int Width>
__global__ void __launch_bounds__(threads_per_block)
    forward_sums_kernel(Layout l, const float* __restrict__ x, float* __restrict__ partials) {
    LADON_SHARED(float, scratch, [threads_per_block]);
    using V = vector_t<Width>;
    const int c = int(blockIdx.x);
    const float shift = x[c * l.plane_units * Width];
    const V* __restrict__ in = reinterpret_cast<const V*>(x);
    float sum[Width * unroll] = {}, squares[Width * unroll] = {};
    for_each_unit(l, c, block_chunk(l), [&](const int* offsets) {
        V v[unroll] = {};
        load_units(in, offsets, v);
#pragma unroll
        for (int u = 0; u < unroll; ++u) {
            if (offsets[u] < 0) continue;
#pragma unroll
            for (int i = 0; i < Width; ++i) {
                const float d = lane(v[u], i) - shift;
                sum[u * Width + i] += d;
                squares[u * Width + i] += d * d;
            }
        }
    });
#pragma unroll
    for (int half = Width * unroll / 2; half > 0; half /= 2)
#pragma unroll
        for (int i = 0; i < half; ++i) {
            sum[i] += sum[i + half];
            squares[i] += squares[i + half];
        }
    const float total = block_sum(sum[0], scratch), total_squares = block_sum(squares[0], scratch);
    if (threadIdx.x == 0) {
        float* out = partials + (c * l.blocks_per_channel + int(blockIdx.y)) * forward_sums;
        out[0] = total;
        out[1] = total_squares;
    }
}

// Per-channel y = (x - centre) * scale + shift, optionally followed by ReLU.
// Centring first keeps a large mean from costing x * scale its low bits.
template <int Width, bool Relu>
__device__ __forceinline__ void apply_affine(const Layout& l, int c, const float* __restrict__ x, float* __restrict__ y,
                                             float centre, float scale, float shift) {
    using V = vector_t<Width>;
    const V* __restrict__ in = reinterpret_cast<const V*>(x);
    V* __restrict__ out = reinterpret_cast<V*>(y);
    for_each_unit(l, c, block_chunk(l), [&](const int* offsets) {
        V v[unroll] = {};
        load_units(in, offsets, v);
#pragma unroll
        for (int u = 0; u < unroll; ++u) {
            if (offsets[u] < 0) continue;
#pragma unroll
            for (int i = 0; i < Width; ++i) {
                const float value = (lane(v[u], i) - centre) * scale + shift;
                lane(v[u], i) = Relu && !(value > 0.0f) ? 0.0f : value;
            }
            out[offsets[u]] = v[u];
        }
    });
}

// Pass 2 forward (training): the channel's mean and variance from the
// partials, then y. Block 0 of each channel saves the float mean and
// 1/sqrt(var + eps) and updates the running statistics (unbiased variance).
template <int Width, bool Relu>
__global__ void __launch_bounds__(threads_per_block)
    forward_apply_kernel(Layout l, float epsilon, float momentum, const float* __restrict__ x, const float* __restrict__ partials,
                         const float* __restrict__ gamma, const float* __restrict__ beta, float* __restrict__ y,
                         float* __restrict__ saved_mean, float* __restrict__ saved_inv_std,
                         float* __restrict__ running_mean, float* __restrict__ running_var) {
    LADON_SHARED(float, shared, [forward_sums]);
    const int c = int(blockIdx.x);
    float totals[forward_sums];
    channel_totals<forward_sums>(l, partials + c * l.blocks_per_channel * forward_sums, totals, shared);
    const float first = x[c * l.plane_units * Width];
    const float offset = totals[0] / l.count;  // mean - first
    const float variance = fmaxf(totals[1] / l.count - offset * offset, 0.0f);
    const float inv_std = 1.0f / sqrtf(variance + epsilon);
    const float scale = gamma[c] * inv_std;
    if (blockIdx.y == 0 && threadIdx.x == 0) {
        const float mean = first + offset;
        saved_mean[c] = mean;
        saved_inv_std[c] = inv_std;
        const float unbiased = l.count > 1.0f ? variance * (l.count / (l.count - 1.0f)) : variance;
        running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mean;
        running_var[c] = (1.0f - momentum) * running_var[c] + momentum * unbiased;
    }
    apply_affine<Width, Relu>(l, c, x, y, first, scale, beta[c] - offset * scale);
}

// Inference: one pass, scale and shift from the running statistics.
template <int Width, bool Relu>
__global__ void __launch_bounds__(threads_per_block)
    forward_inference_kernel(Layout l, float epsilon, const float* __restrict__ x, const float* __restrict__ gamma,
                             const float* __restrict__ beta, const float* __restrict__ running_mean,
                             const float* __restrict__ running_var, float* __restrict__ y) {
    const int c = int(blockIdx.x);
    const float scale = gamma[c] / sqrtf(running_var[c] + epsilon);
    apply_affine<Width, Relu>(l, c, x, y, running_mean[c], scale, beta[c]);
}

// dy, or 0 where a fused ReLU's output y was not positive.
template <bool Relu>
__device__ __forceinline__ float gradient_in(float dy, float y) {
    return Relu && !(y > 0.0f) ? 0.0f : dy;
}

// Pass 1 backward: partial sums of dy, x - mean and dy (x - mean).
template <int Width, bool Relu>
__global__ void __launch_bounds__(threads_per_block)
    backward_sums_kernel(Layout l, const float* __restrict__ x, const float* __restrict__ grad_y,
                         const float* __restrict__ y, const float* __restrict__ saved_mean,
                         float* __restrict__ partials) {
    LADON_SHARED(float, scratch, [threads_per_block]);
    using V = vector_t<Width>;
    const int c = int(blockIdx.x);
    const float mean = saved_mean[c];
    const V* __restrict__ xs = reinterpret_cast<const V*>(x);
    const V* __restrict__ dys = reinterpret_cast<const V*>(grad_y);
    const V* __restrict__ ys = reinterpret_cast<const V*>(y);
    float grad[Width] = {}, centred[Width] = {}, grad_centred[Width] = {};
    for_each_unit(l, c, block_chunk(l), [&](const int* offsets) {
        V xv[unroll] = {}, dv[unroll] = {}, yv[unroll] = {};
        load_units(xs, offsets, xv);
        load_units(dys, offsets, dv);
        if (Relu) load_units(ys, offsets, yv);
#pragma unroll
        for (int u = 0; u < unroll; ++u) {
            if (offsets[u] < 0) continue;
#pragma unroll
            for (int i = 0; i < Width; ++i) {
                const float dy = gradient_in<Relu>(lane(dv[u], i), Relu ? lane(yv[u], i) : 0.0f);
                const float xc = lane(xv[u], i) - mean;
                grad[i] += dy;
                centred[i] += xc;
                grad_centred[i] += dy * xc;
            }
        }
    });
#pragma unroll
    for (int i = 1; i < Width; ++i) {
        grad[0] += grad[i];
        centred[0] += centred[i];
        grad_centred[0] += grad_centred[i];
    }
    const float total_grad = block_sum(grad[0], scratch);
    const float total_centred = block_sum(centred[0], scratch);
    const float total_grad_centred = block_sum(grad_centred[0], scratch);
    if (threadIdx.x == 0) {
        float* out = partials + (c * l.blocks_per_channel + int(blockIdx.y)) * backward_sums;
        out[0] = total_grad;
        out[1] = total_centred;
        out[2] = total_grad_centred;
    }
}

// Pass 2 backward: dx = a dy + b (x - mean) + d per channel (the CPU's
// formulas, the mean's float residual included); block 0 of each channel
// adds grad_beta and grad_gamma. Accumulate: grad_x += dx, else grad_x = dx.
template <int Width, bool Relu, bool Accumulate>
__global__ void __launch_bounds__(threads_per_block)
    backward_apply_kernel(Layout l, const float* __restrict__ x, const float* __restrict__ grad_y,
                          const float* __restrict__ y, const float* __restrict__ partials,
                          const float* __restrict__ gamma, const float* __restrict__ saved_mean,
                          const float* __restrict__ saved_inv_std, float* __restrict__ grad_x,
                          float* __restrict__ grad_gamma, float* __restrict__ grad_beta) {
    LADON_SHARED(float, shared, [backward_sums]);
    using V = vector_t<Width>;
    const int c = int(blockIdx.x);
    float totals[backward_sums];
    channel_totals<backward_sums>(l, partials + c * l.blocks_per_channel * backward_sums, totals, shared);
    const float mean = saved_mean[c], inv_std = saved_inv_std[c];
    const float mean_residual = totals[1] / l.count;
    const float sum_grad_x_hat = (totals[2] - mean_residual * totals[0]) * inv_std;
    if (blockIdx.y == 0 && threadIdx.x == 0) {
        grad_beta[c] += totals[0];
        grad_gamma[c] += sum_grad_x_hat;
    }
    const float factor = gamma[c] * inv_std;
    const float slope = -factor * (sum_grad_x_hat / l.count) * inv_std;
    const float constant = -factor * (totals[0] / l.count) - slope * mean_residual;

    const V* __restrict__ xs = reinterpret_cast<const V*>(x);
    const V* __restrict__ dys = reinterpret_cast<const V*>(grad_y);
    const V* __restrict__ ys = reinterpret_cast<const V*>(y);
    V* __restrict__ out = reinterpret_cast<V*>(grad_x);
    for_each_unit(l, c, block_chunk(l), [&](const int* offsets) {
        V xv[unroll] = {}, dv[unroll] = {}, yv[unroll] = {}, gv[unroll] = {};
        load_units(xs, offsets, xv);
        load_units(dys, offsets, dv);
        if (Relu) load_units(ys, offsets, yv);
        if (Accumulate) load_units(static_cast<const V*>(out), offsets, gv);
#pragma unroll
        for (int u = 0; u < unroll; ++u) {
            if (offsets[u] < 0) continue;
#pragma unroll
            for (int i = 0; i < Width; ++i) {
                const float dy = gradient_in<Relu>(lane(dv[u], i), Relu ? lane(yv[u], i) : 0.0f);
                const float dx = factor * dy + slope * (lane(xv[u], i) - mean) + constant;
                lane(gv[u], i) = Accumulate ? lane(gv[u], i) + dx : dx;
            }
            out[offsets[u]] = gv[u];
        }
    });
}

}  // namespace ladon::cuda::batch_norm
