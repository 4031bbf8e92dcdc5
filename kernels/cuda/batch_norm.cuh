#pragma once
// Device code for batch normalisation (kernels/cuda/batch_norm.hpp). The
// formulas are kernels/cpu/batch_norm.cpp's (two-pass mean and variance in
// double; y and grad_x centred on the float mean with the residual in double);
// only the order of the per-channel sums differs, fixed per launch shape.
#include <cmath>
#include <cstdint>

#include "kernels/cuda/device.hpp"

namespace ladon::cuda::batch_norm {

// A power of two: block_sum halves it.
constexpr int threads_per_block = 256;

struct Geometry {
    int64_t batch;
    int64_t channels;
    int64_t spatial;
    float epsilon;
    float momentum;
};

// Element j in [0, batch * spatial) of channel c: sample j / spatial,
// position j % spatial.
__device__ __forceinline__ int64_t channel_element(const Geometry& g, int64_t c, int64_t j) {
    return ((j / g.spatial) * g.channels + c) * g.spatial + j % g.spatial;
}

// The sum of every thread's `value`, returned to every thread: a fixed
// shared-memory tree (halving strides), so the order is the same on every run.
// Every thread of the block must call it; it ends with a barrier, so
// `scratch` may be reused at once.
__device__ __forceinline__ double block_sum(double value, double* scratch) {
    const int t = int(threadIdx.x);
    scratch[t] = value;
    __syncthreads();
    for (int stride = threads_per_block / 2; stride > 0; stride /= 2) {
        if (t < stride) scratch[t] += scratch[t + stride];
        __syncthreads();
    }
    const double total = scratch[0];
    __syncthreads();
    return total;
}

// One block per channel (blockIdx.x), threads striding over its batch x
// spatial values. Pass 1 sums x, pass 2 the squared deviations from the
// mean, each per thread in double, then block_sum. Thread 0 derives scale and
// shift, saves the statistics and updates the running ones; after a barrier
// every thread writes its share of y. Channels share nothing.
__global__ void __launch_bounds__(threads_per_block)
    forward_training_kernel(Geometry g, const float* __restrict__ x, const float* __restrict__ gamma,
                            const float* __restrict__ beta, float* __restrict__ y, float* __restrict__ saved_mean,
                            float* __restrict__ saved_inv_std, float* __restrict__ running_mean,
                            float* __restrict__ running_var) {
    LADON_SHARED(double, scratch, [threads_per_block]);
    LADON_SHARED(float, coefficients, [3]);  // mean_float, scale, shift
    const int64_t c = blockIdx.x;
    const int64_t per_channel = g.batch * g.spatial;

    double sum = 0.0;
    for (int64_t j = threadIdx.x; j < per_channel; j += blockDim.x) sum += x[channel_element(g, c, j)];
    const double mean = block_sum(sum, scratch) / double(per_channel);
    double squared = 0.0;
    for (int64_t j = threadIdx.x; j < per_channel; j += blockDim.x) {
        const double deviation = double(x[channel_element(g, c, j)]) - mean;
        squared += deviation * deviation;
    }
    const double variance = block_sum(squared, scratch) / double(per_channel);

    if (threadIdx.x == 0) {
        const double inv_std = 1.0 / sqrt(variance + double(g.epsilon));
        const float mean_float = float(mean);
        const double mean_residual = mean - double(mean_float);
        const double gamma_inv_std = double(gamma[c]) * inv_std;
        coefficients[0] = mean_float;
        coefficients[1] = float(gamma_inv_std);
        coefficients[2] = float(double(beta[c]) - mean_residual * gamma_inv_std);
        saved_mean[c] = mean_float;
        saved_inv_std[c] = float(inv_std);
        // One value per channel: keep the biased variance (0), as the CPU.
        const double unbiased_factor = per_channel > 1 ? double(per_channel) / double(per_channel - 1) : 1.0;
        const double momentum = g.momentum;
        running_mean[c] = float((1.0 - momentum) * running_mean[c] + momentum * mean);
        running_var[c] = float((1.0 - momentum) * running_var[c] + momentum * variance * unbiased_factor);
    }
    __syncthreads();
    const float mean_float = coefficients[0], scale = coefficients[1], shift = coefficients[2];
    for (int64_t j = threadIdx.x; j < per_channel; j += blockDim.x) {
        const int64_t i = channel_element(g, c, j);
        y[i] = (x[i] - mean_float) * scale + shift;
    }
}

// No reduction. Blocks stride over the (sample, channel) planes along y and
// over a plane's positions along x, so the channel is known per plane and no
// element needs a division (int64 `/` and `%` per element are called
// subroutines that made ptxas spill). The channel advances by
// `channel_step` = gridDim.y % channels per plane step, wrapping without a
// `%`. Scale and shift are derived once per plane, as on the CPU. Threads
// share nothing.
__global__ void __launch_bounds__(threads_per_block)
    forward_inference_kernel(Geometry g, int64_t channel_step, const float* __restrict__ x,
                             const float* __restrict__ gamma, const float* __restrict__ beta,
                             const float* __restrict__ running_mean, const float* __restrict__ running_var,
                             float* __restrict__ y) {
    const int64_t planes = g.batch * g.channels;
    const int64_t position_stride = int64_t{gridDim.x} * blockDim.x;
    int64_t c = int64_t{blockIdx.y} % g.channels;
    for (int64_t plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const double inv_std = 1.0 / sqrt(double(running_var[c]) + double(g.epsilon));
        const float scale = float(double(gamma[c]) * inv_std);
        const float mean = running_mean[c], shift = beta[c];
        const float* __restrict__ in = x + plane * g.spatial;
        float* __restrict__ out = y + plane * g.spatial;
        for (int64_t j = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; j < g.spatial; j += position_stride)
            out[j] = (in[j] - mean) * scale + shift;
        c += channel_step;
        if (c >= g.channels) c -= g.channels;
    }
}

// One block per channel. Each thread sums dy, (x - mean_float) and
// dy * (x - mean_float) over its strided share in double, then three
// block_sums. Thread 0 adds grad_beta and grad_gamma and folds the per-channel
// constants of dx = a * dy + b * (x - mean_float) + d (CPU formulas); after a
// barrier every thread adds its share of grad_x. Channels share nothing.
__global__ void __launch_bounds__(threads_per_block)
    backward_kernel(Geometry g, const float* __restrict__ x, const float* __restrict__ grad_y,
                    const float* __restrict__ gamma, const float* __restrict__ saved_mean,
                    const float* __restrict__ saved_inv_std, float* __restrict__ grad_x, float* __restrict__ grad_gamma,
                    float* __restrict__ grad_beta) {
    LADON_SHARED(double, scratch, [threads_per_block]);
    LADON_SHARED(float, coefficients, [3]);  // a, b, d
    const int64_t c = blockIdx.x;
    const int64_t per_channel = g.batch * g.spatial;
    const float mean_float = saved_mean[c];
    const double inv_std = saved_inv_std[c];

    double grad = 0.0, centred = 0.0, grad_centred = 0.0;
    for (int64_t j = threadIdx.x; j < per_channel; j += blockDim.x) {
        const int64_t i = channel_element(g, c, j);
        const double dy = grad_y[i];
        const double xc = x[i] - mean_float;
        grad += dy;
        centred += xc;
        grad_centred += dy * xc;
    }
    const double sum_grad = block_sum(grad, scratch);
    const double sum_centred = block_sum(centred, scratch);
    const double sum_grad_centred = block_sum(grad_centred, scratch);

    if (threadIdx.x == 0) {
        const double mean_residual = sum_centred / double(per_channel);
        const double sum_grad_x_hat = (sum_grad_centred - mean_residual * sum_grad) * inv_std;
        grad_beta[c] += float(sum_grad);
        grad_gamma[c] += float(sum_grad_x_hat);
        const double factor = double(gamma[c]) * inv_std;
        const double mean_grad = sum_grad / double(per_channel);
        const double mean_grad_x_hat = sum_grad_x_hat / double(per_channel);
        const double slope = -factor * mean_grad_x_hat * inv_std;
        coefficients[0] = float(factor);
        coefficients[1] = float(slope);
        coefficients[2] = float(-factor * mean_grad - slope * mean_residual);
    }
    __syncthreads();
    const float a = coefficients[0], b = coefficients[1], d = coefficients[2];
    for (int64_t j = threadIdx.x; j < per_channel; j += blockDim.x) {
        const int64_t i = channel_element(g, c, j);
        grad_x[i] += a * grad_y[i] + b * (x[i] - mean_float) + d;
    }
}

}  // namespace ladon::cuda::batch_norm
