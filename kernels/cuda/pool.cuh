#pragma once
// Device code for max_pool2d and avg_pool2d (kernels/cuda/pool.hpp). The
// arithmetic and its order are kernels/cpu/pool.cpp's, so results match the
// CPU bit for bit: forward visits each window row-major; backward adds a
// plane's output gradients to an input element in ascending (oh, ow) order,
// as the CPU's scatter does, but as a gather, so no two threads write one
// address and no float atomics (and no order among threads) are involved.
//
// Parallel decomposition, all four kernels: a thread owns a run of `run`
// consecutive elements of one row, outputs in forward, inputs in backward
// (a row's last run may be shorter), grid-stride over all runs of all planes.
// Forward walks the window rows its outputs share, h outer, each output's
// columns inner, with one running max or sum per output: each output still
// sees its window row-major, and the loads of four windows are in flight
// together. Backward walks once the outputs covering any of its inputs,
// ascending (oh, ow), loads each output's gradient (and argmax) once for all,
// and adds it to those of its inputs it belongs to. A run is stored (and
// backward's accumulate reads it) as float4 or float2 where the row length
// and the pointers allow, else as scalars. All index math is 32-bit: the
// host refuses tensors of 2^31 elements or more and hands over FastDivisors
// for the decode thread -> (row, run) -> (plane, row within the plane).
//
// Max-pool argmax, for a window of at most 256 positions: the byte offset of
// the maximum within its window, (h - h0) * kernel_width + (w - w0) with
// (h0, w0) the unclipped window's corner, and 255 for a window wholly in the
// padding (backward never reads those: no input lies in them). Forward writes
// 1 byte per output and backward reads 1 byte per covering output, not 4;
// recomputing the maximum in backward instead would re-read the 4-byte input
// window of every output. Larger windows store the int32 index within the
// plane, as the CPU does (-1 for a window in the padding).
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/fast_divisor.hpp"

namespace ladon::cuda::pool {

constexpr int threads_per_block = 256;
// Consecutive elements of a row per thread.
constexpr int run = 4;
// The byte argmax of a window wholly in the padding.
constexpr std::uint8_t byte_argmax_none = 255;

// Pool2dShape in 32 bits, the output size precomputed on the host (its
// constexpr members are host functions to nvcc).
struct Windows {
    int in_height, in_width;
    int out_height, out_width;
    int kernel_height, kernel_width;
    int stride_height, stride_width;
    int pad_height, pad_width;
    FastDivisor stride_rows, stride_columns;  // by stride_height, stride_width
};

// The runs of a [planes, height, width] tensor, one per thread.
struct Runs {
    int width;            // row length
    FastDivisor per_row;  // divides by the runs per row, ceil(width / run)
    FastDivisor height;   // divides by the rows per plane
    unsigned count;       // planes * height * runs per row
};

struct RunPosition {
    int plane, row;  // row within the plane
    int column;      // of the run's first element
    int first;       // the run's first element, counted from the tensor's
    int count;       // elements in the run: run, or fewer at a row's end
};

__device__ __forceinline__ RunPosition locate(const Runs& runs, unsigned thread) {
    int row_index, run_index, plane, row;
    runs.per_row.divide(thread, row_index, run_index);
    runs.height.divide(static_cast<unsigned>(row_index), plane, row);
    const int column = run_index * run;
    return {plane, row, column, row_index * runs.width + column, min(run, runs.width - column)};
}

// `Width` elements moved as one load or store (float4, float2, 4 bytes...).
template <typename T, int Width>
struct alignas(sizeof(T) * Width) Pack {
    T lanes[Width];
};

// values[0, count) to out[first, first + count), Width at a time: `first`
// and `count` are multiples of Width and `out` is aligned to a Pack.
template <int Width, typename T>
__device__ __forceinline__ void store_run(T* __restrict__ out, const RunPosition& p, const T (&values)[run]) {
#pragma unroll
    for (int j = 0; j < run; j += Width) {
        if (j >= p.count) break;
        Pack<T, Width> pack;
#pragma unroll
        for (int i = 0; i < Width; ++i) pack.lanes[i] = values[j + i];
        *reinterpret_cast<Pack<T, Width>*>(out + p.first + j) = pack;
    }
}

template <int Width>
__device__ __forceinline__ void load_run(const float* __restrict__ in, const RunPosition& p, float (&values)[run]) {
#pragma unroll
    for (int j = 0; j < run; j += Width) {
        if (j >= p.count) break;
        const Pack<float, Width> pack = *reinterpret_cast<const Pack<float, Width>*>(in + p.first + j);
#pragma unroll
        for (int i = 0; i < Width; ++i) values[j + i] = pack.lanes[i];
    }
}

// The outputs [begin, end) along one axis whose windows cover input position
// `x`: start = o * stride - pad <= x < start + kernel.
struct Range {
    int begin, end;
};
__device__ __forceinline__ Range covering_outputs(int x, int kernel, int pad, int outputs, const FastDivisor& stride) {
    const int lowest = x + pad - kernel + 1;  // o * stride >= lowest
    const int begin = lowest <= 0 ? 0 : static_cast<int>(stride.divide(static_cast<unsigned>(lowest - 1))) + 1;
    const int end = min(static_cast<int>(stride.divide(static_cast<unsigned>(x + pad))) + 1, outputs);
    return {begin, end};
}

// The argmax of input (h, w) in the window with corner (h0, w0).
template <typename Argmax>
__device__ __forceinline__ Argmax argmax_of(const Windows& g, int h, int w, int h0, int w0) {
    if constexpr (std::is_same_v<Argmax, std::uint8_t>)
        return static_cast<std::uint8_t>((h - h0) * g.kernel_width + (w - w0));
    else
        return h * g.in_width + w;
}

// The input column that `argmax` of the window with corner (h0, w0) names
// if it lies in input row h, else -1.
template <typename Argmax>
__device__ __forceinline__ int argmax_column(const Windows& g, Argmax argmax, int h, int h0, int w0) {
    if constexpr (std::is_same_v<Argmax, std::uint8_t>) {
        const int offset = int{argmax} - (h - h0) * g.kernel_width;
        return offset >= 0 && offset < g.kernel_width ? w0 + offset : -1;
    } else {
        const int column = argmax - h * g.in_width;
        return column >= 0 && column < g.in_width ? column : -1;
    }
}

// The clipped columns [begin, end) of each output's window in a run, and its
// corner column; empty past the row's end.
struct RunColumns {
    int corner[run], begin[run], end[run];
};
__device__ __forceinline__ RunColumns run_columns(const Windows& g, const RunPosition& p) {
    RunColumns c;
#pragma unroll
    for (int j = 0; j < run; ++j) {
        c.corner[j] = j < p.count ? (p.column + j) * g.stride_width - g.pad_width : 0;
        c.begin[j] = max(c.corner[j], 0);
        c.end[j] = j < p.count ? min(c.corner[j] + g.kernel_width, g.in_width) : 0;
    }
    return c;
}

// Argmax: std::uint8_t (window offsets) or int32_t (plane indices). Width:
// the stores' vector width, 4, 2 or 1.
template <typename Argmax, int Width>
__global__ void __launch_bounds__(threads_per_block)
    max_pool2d_forward_kernel(Windows g, Runs runs, const float* __restrict__ input, float* __restrict__ output,
                              Argmax* __restrict__ argmax) {
    const unsigned step = gridDim.x * blockDim.x;
    for (unsigned t = blockIdx.x * blockDim.x + threadIdx.x; t < runs.count; t += step) {
        const RunPosition p = locate(runs, t);
        const int h0 = p.row * g.stride_height - g.pad_height;
        const int h_begin = max(h0, 0), h_end = min(h0 + g.kernel_height, g.in_height);
        const RunColumns c = run_columns(g, p);
        const float* in = input + p.plane * g.in_height * g.in_width;
        float best[run];
        Argmax best_at[run];
#pragma unroll
        for (int j = 0; j < run; ++j) {
            best[j] = -INFINITY;
            const bool empty = h_begin >= h_end || c.begin[j] >= c.end[j];
            if constexpr (std::is_same_v<Argmax, std::uint8_t>)
                best_at[j] = empty ? byte_argmax_none : argmax_of<Argmax>(g, h_begin, c.begin[j], h0, c.corner[j]);
            else
                best_at[j] = empty ? -1 : argmax_of<Argmax>(g, h_begin, c.begin[j], h0, c.corner[j]);
        }
        for (int h = h_begin; h < h_end; ++h) {
            const float* row = in + h * g.in_width;
#pragma unroll
            for (int j = 0; j < run; ++j) {
                for (int w = c.begin[j]; w < c.end[j]; ++w) {
                    const float v = row[w];
                    if (v > best[j] || v != v) {  // v != v: NaN wins
                        best[j] = v;
                        best_at[j] = argmax_of<Argmax>(g, h, w, h0, c.corner[j]);
                    }
                }
            }
        }
        store_run<Width>(output, p, best);
        store_run<Width>(argmax, p, best_at);
    }
}

// Each output's window sum, row-major, over the kernel area (padding counts
// as zeros).
template <int Width>
__global__ void __launch_bounds__(threads_per_block)
    avg_pool2d_forward_kernel(Windows g, Runs runs, const float* __restrict__ input, float* __restrict__ output) {
    const float area = static_cast<float>(g.kernel_height * g.kernel_width);
    const unsigned step = gridDim.x * blockDim.x;
    for (unsigned t = blockIdx.x * blockDim.x + threadIdx.x; t < runs.count; t += step) {
        const RunPosition p = locate(runs, t);
        const int h0 = p.row * g.stride_height - g.pad_height;
        const int h_begin = max(h0, 0), h_end = min(h0 + g.kernel_height, g.in_height);
        const RunColumns c = run_columns(g, p);
        const float* in = input + p.plane * g.in_height * g.in_width;
        float sum[run] = {};
        for (int h = h_begin; h < h_end; ++h) {
            const float* row = in + h * g.in_width;
#pragma unroll
            for (int j = 0; j < run; ++j)
                for (int w = c.begin[j]; w < c.end[j]; ++w) sum[j] += row[w];
        }
#pragma unroll
        for (int j = 0; j < run; ++j) sum[j] /= area;
        store_run<Width>(output, p, sum);
    }
}

// The outputs covering a run of inputs: rows [rows.begin, rows.end) x
// columns [columns.begin, columns.end). Every such window holds at least one
// of the run's inputs, so none lies wholly in the padding.
struct Covering {
    Range rows, columns;
};
__device__ __forceinline__ Covering covering_run(const Windows& g, const RunPosition& p) {
    const Range rows = covering_outputs(p.row, g.kernel_height, g.pad_height, g.out_height, g.stride_rows);
    const Range first = covering_outputs(p.column, g.kernel_width, g.pad_width, g.out_width, g.stride_columns);
    const Range last =
        covering_outputs(p.column + p.count - 1, g.kernel_width, g.pad_width, g.out_width, g.stride_columns);
    return {rows, {first.begin, last.end}};
}

// Backward: each of the run's inputs gets the gradient of every covering
// output whose argmax it is, in ascending (oh, ow) order, onto the gradient
// already there (accumulate) or onto zero.
template <typename Argmax, int Width>
__global__ void __launch_bounds__(threads_per_block)
    max_pool2d_backward_kernel(Windows g, Runs runs, const float* __restrict__ grad_output,
                               const Argmax* __restrict__ argmax, float* __restrict__ grad_input, bool accumulate) {
    const unsigned step = gridDim.x * blockDim.x;
    for (unsigned t = blockIdx.x * blockDim.x + threadIdx.x; t < runs.count; t += step) {
        const RunPosition p = locate(runs, t);
        const Covering covering = covering_run(g, p);
        float gradient[run] = {};
        if (accumulate) load_run<Width>(grad_input, p, gradient);
        for (int oh = covering.rows.begin; oh < covering.rows.end; ++oh) {
            const int h0 = oh * g.stride_height - g.pad_height;
            const int first = (p.plane * g.out_height + oh) * g.out_width;
            for (int ow = covering.columns.begin; ow < covering.columns.end; ++ow) {
                const int w0 = ow * g.stride_width - g.pad_width;
                const int j = argmax_column(g, argmax[first + ow], p.row, h0, w0) - p.column;
                if (j < 0 || j >= run) continue;  // the maximum is not in this run
                const float value = grad_output[first + ow];
#pragma unroll
                for (int i = 0; i < run; ++i)
                    if (i == j) gradient[i] += value;
            }
        }
        store_run<Width>(grad_input, p, gradient);
    }
}

// Backward: grad_output / area of every covering window, in ascending
// (oh, ow) order, onto the gradient already there or onto zero.
template <int Width>
__global__ void __launch_bounds__(threads_per_block)
    avg_pool2d_backward_kernel(Windows g, Runs runs, const float* __restrict__ grad_output,
                               float* __restrict__ grad_input, bool accumulate) {
    const float area = static_cast<float>(g.kernel_height * g.kernel_width);
    const unsigned step = gridDim.x * blockDim.x;
    for (unsigned t = blockIdx.x * blockDim.x + threadIdx.x; t < runs.count; t += step) {
        const RunPosition p = locate(runs, t);
        const Covering covering = covering_run(g, p);
        float gradient[run] = {};
        if (accumulate) load_run<Width>(grad_input, p, gradient);
        for (int oh = covering.rows.begin; oh < covering.rows.end; ++oh) {
            const int first = (p.plane * g.out_height + oh) * g.out_width;
            for (int ow = covering.columns.begin; ow < covering.columns.end; ++ow) {
                const float value = grad_output[first + ow] / area;
                const int w0 = ow * g.stride_width - g.pad_width;
#pragma unroll
                for (int j = 0; j < run; ++j)
                    if (p.column + j >= w0 && p.column + j < w0 + g.kernel_width) gradient[j] += value;
            }
        }
        store_run<Width>(grad_input, p, gradient);
    }
}

}  // namespace ladon::cuda::pool
