#pragma once
// Device code for max_pool2d and avg_pool2d (kernels/cuda/pool.hpp). The
// arithmetic and its order are kernels/cpu/pool.cpp's, so results match the
// CPU bit for bit: forward visits a window row-major; backward adds a plane's
// output gradients to an input element in ascending output order, as the CPU's
// scatter does, but as a gather: each thread owns one input element and reads
// every output window that covers it, so no two threads write one address and
// no float atomics (and no order among threads) are involved.
#include <cmath>
#include <cstdint>

#include "kernels/cuda/device.hpp"

namespace ladon::cuda::pool {

constexpr int threads_per_block = 256;

// Pool2dShape with the output size precomputed on the host (its constexpr
// members are host functions to nvcc).
struct Geometry {
    int64_t planes;  // batch * channels
    int64_t in_height, in_width;
    int64_t out_height, out_width;
    int64_t kernel_height, kernel_width;
    int64_t stride_height, stride_width;
    int64_t pad_height, pad_width;
};

// The outputs [begin, end) along one axis whose windows cover input position
// `x`: start = o * stride - pad <= x < start + kernel.
struct Range {
    int64_t begin;
    int64_t end;
};
__device__ __forceinline__ Range covering_outputs(int64_t x, int64_t kernel, int64_t stride, int64_t pad,
                                                  int64_t outputs) {
    const int64_t lowest = x + pad - kernel + 1;  // o * stride >= lowest
    const int64_t begin = lowest <= 0 ? 0 : (lowest + stride - 1) / stride;
    const int64_t end = min((x + pad) / stride + 1, outputs);
    return {begin, end};
}

// One thread per output element (grid-stride over all planes' outputs): it
// scans its clipped window row-major, keeping the first maximum and letting a
// NaN win, and writes the output and its argmax. Threads share nothing.
__global__ void __launch_bounds__(threads_per_block)
    max_pool2d_forward_kernel(Geometry g, const float* __restrict__ input, float* __restrict__ output,
                              int32_t* __restrict__ argmax) {
    const int64_t per_plane = g.out_height * g.out_width;
    const int64_t total = g.planes * per_plane;
    const int64_t stride = int64_t{gridDim.x} * blockDim.x;
    for (int64_t o = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; o < total; o += stride) {
        const int64_t plane = o / per_plane, oh = (o % per_plane) / g.out_width, ow = o % g.out_width;
        const int64_t h0 = oh * g.stride_height - g.pad_height, w0 = ow * g.stride_width - g.pad_width;
        const int64_t h_begin = max(h0, int64_t{0}), h_end = min(h0 + g.kernel_height, g.in_height);
        const int64_t w_begin = max(w0, int64_t{0}), w_end = min(w0 + g.kernel_width, g.in_width);
        const float* in = input + plane * g.in_height * g.in_width;
        float best = -INFINITY;
        int64_t best_index = h_begin < h_end && w_begin < w_end ? h_begin * g.in_width + w_begin : -1;
        for (int64_t h = h_begin; h < h_end; ++h) {
            for (int64_t w = w_begin; w < w_end; ++w) {
                const float v = in[h * g.in_width + w];
                if (v > best || v != v) {  // v != v: NaN wins
                    best = v;
                    best_index = h * g.in_width + w;
                }
            }
        }
        output[o] = best;
        argmax[o] = static_cast<int32_t>(best_index);
    }
}

// One thread per output element: the window's sum, row-major, over the
// kernel area (padding counts as zeros). Threads share nothing.
__global__ void __launch_bounds__(threads_per_block)
    avg_pool2d_forward_kernel(Geometry g, const float* __restrict__ input, float* __restrict__ output) {
    const int64_t per_plane = g.out_height * g.out_width;
    const int64_t total = g.planes * per_plane;
    const float area = static_cast<float>(g.kernel_height * g.kernel_width);
    const int64_t stride = int64_t{gridDim.x} * blockDim.x;
    for (int64_t o = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; o < total; o += stride) {
        const int64_t plane = o / per_plane, oh = (o % per_plane) / g.out_width, ow = o % g.out_width;
        const int64_t h0 = oh * g.stride_height - g.pad_height, w0 = ow * g.stride_width - g.pad_width;
        const int64_t h_begin = max(h0, int64_t{0}), h_end = min(h0 + g.kernel_height, g.in_height);
        const int64_t w_begin = max(w0, int64_t{0}), w_end = min(w0 + g.kernel_width, g.in_width);
        const float* in = input + plane * g.in_height * g.in_width;
        float sum = 0.0f;
        for (int64_t h = h_begin; h < h_end; ++h)
            for (int64_t w = w_begin; w < w_end; ++w) sum += in[h * g.in_width + w];
        output[o] = sum / area;
    }
}

// One thread per input element (grid-stride): it walks the output windows
// that cover it in ascending (oh, ow) order and adds grad_output where the
// window's argmax is this element, onto the gradient already there. The
// thread alone writes its element: no atomics.
__global__ void __launch_bounds__(threads_per_block)
    max_pool2d_backward_kernel(Geometry g, const float* __restrict__ grad_output, const int32_t* __restrict__ argmax,
                               float* __restrict__ grad_input, bool accumulate) {
    const int64_t plane_size = g.in_height * g.in_width;
    const int64_t total = g.planes * plane_size;
    const int64_t per_plane = g.out_height * g.out_width;
    const int64_t stride = int64_t{gridDim.x} * blockDim.x;
    for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int64_t plane = i / plane_size, index = i % plane_size;
        const int64_t h = index / g.in_width, w = index % g.in_width;
        const Range rows = covering_outputs(h, g.kernel_height, g.stride_height, g.pad_height, g.out_height);
        const Range cols = covering_outputs(w, g.kernel_width, g.stride_width, g.pad_width, g.out_width);
        const int64_t first = plane * per_plane;
        float gradient = accumulate ? grad_input[i] : 0.0f;
        for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
            for (int64_t ow = cols.begin; ow < cols.end; ++ow) {
                const int64_t o = first + oh * g.out_width + ow;
                if (argmax[o] == index) gradient += grad_output[o];
            }
        }
        grad_input[i] = gradient;
    }
}

// One thread per input element: grad_output / area of every covering window,
// in ascending (oh, ow) order, onto the gradient already there. No atomics.
__global__ void __launch_bounds__(threads_per_block)
    avg_pool2d_backward_kernel(Geometry g, const float* __restrict__ grad_output, float* __restrict__ grad_input,
                               bool accumulate) {
    const int64_t plane_size = g.in_height * g.in_width;
    const int64_t total = g.planes * plane_size;
    const int64_t per_plane = g.out_height * g.out_width;
    const float area = static_cast<float>(g.kernel_height * g.kernel_width);
    const int64_t stride = int64_t{gridDim.x} * blockDim.x;
    for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int64_t plane = i / plane_size, index = i % plane_size;
        const int64_t h = index / g.in_width, w = index % g.in_width;
        const Range rows = covering_outputs(h, g.kernel_height, g.stride_height, g.pad_height, g.out_height);
        const Range cols = covering_outputs(w, g.kernel_width, g.stride_width, g.pad_width, g.out_width);
        const int64_t first = plane * per_plane;
        float gradient = accumulate ? grad_input[i] : 0.0f;
        for (int64_t oh = rows.begin; oh < rows.end; ++oh)
            for (int64_t ow = cols.begin; ow < cols.end; ++ow)
                gradient += grad_output[first + oh * g.out_width + ow] / area;
        grad_input[i] = gradient;
    }
}

}  // namespace ladon::cuda::pool
