#pragma once
// Device code of the tensor-core convolutions (conv2d_tensor_core.cu): the
// implicit GEMMs of conv2d.cuh on the shared mma pipeline (mma_pipeline.cuh),
// TF32 or BF16 operands, FP32 accumulation. Every operand is gathered by
// 4-byte cp.async with zero-fill (padding, stride gaps, ragged edges); the
// index decodes use FastDivisor and 32-bit offsets within a sample (the host
// checks that they fit, else it runs the FP32 kernels).
//   forward          C[Cout, N*P]    = weight[Cout, Cin*RS] x unfolded input[Cin*RS, N*P]
//   backward data    C[Cin, N*H*W]  += weight^T[Cin, Cout*RS] x grad_output taps[Cout*RS, N*H*W]
//   backward filter  C[Cout, Cin*RS] += grad_output[Cout, N*P] x unfolded input^T[N*P, Cin*RS]
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/fast_divisor.hpp"
#include "kernels/cuda/mma_pipeline.cuh"
#include "kernels/ops.hpp"

namespace ladon::cuda::tc_conv {

using namespace mma_pipeline;

// The shape in 32 bits, with a divisor for every index decode.
struct Geometry {
    int batch, in_channels, in_height, in_width, out_channels, out_height, out_width;
    int kernel_height, kernel_width, stride_height, stride_width, pad_height, pad_width;
    int window;         // kernel_height * kernel_width
    int positions;      // out_height * out_width
    int pixels;         // in_height * in_width
    FastDivisor by_kernel_width, by_window;
    FastDivisor by_out_width, by_positions;
};

// Column n of an mn-major gather tile (forward, backward data), decoded once
// per thread: its sample (-1 past the end; the sample, not its offset: one
// register fewer per column, which the 128 x 128 tiles need) and where its
// tap (0, 0) lies in the gathered plane (may be outside it).
struct WindowColumn {
    int sample;
    int y, x;
};

// The tensor an mn-major B tile gathers from, and its rows: row k = (channel,
// a, b) by two divisors; tap (a, b) of column (y, x) reads (y + a, x + b), or
// (y - a, x - b) when `backwards`.
struct WindowSource {
    const float* data;
    int channels, height, width;  // of each sample
    int k_count;                  // rows: channels x taps
    FastDivisor by_taps, by_tap_width;
};

// Issues the copies of an mn-major B tile (32 rows of k, block_n columns):
// lane l copies columns n0 + l, n0 + l + 32, ... of rows warp, warp +
// T::warps, ..., so a warp's copy is 32 consecutive floats of one row and
// each row's (channel, a, b) is decoded once per thread. 0 outside the plane.
template <typename T, typename Layout, bool backwards>
__device__ __forceinline__ void copy_windows(float* tile, const WindowSource& source,
                                             const WindowColumn (&columns)[T::block_n / 32], int k0) {
    const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
    const int plane = source.height * source.width;
#pragma unroll 2
    for (int row = warp; row < Layout::rows; row += T::warps) {
        const int k = k0 + row;
        int channel = 0, tap = 0, a = 0, b = 0;
        if (k < source.k_count) {
            source.by_taps.divide(static_cast<std::uint32_t>(k), channel, tap);
            source.by_tap_width.divide(static_cast<std::uint32_t>(tap), a, b);
        }
#pragma unroll
        for (int j = 0; j < T::block_n / 32; ++j) {
            const WindowColumn& c = columns[j];
            const int y = backwards ? c.y - a : c.y + a, x = backwards ? c.x - b : c.x + b;
            const bool valid =
                k < source.k_count && c.sample >= 0 && y >= 0 && y < source.height && x >= 0 && x < source.width;
            const float* from = valid ? source.data + int64_t{c.sample} * source.channels * plane + channel * plane +
                                            y * source.width + x
                                      : source.data;
            tensor_core::cp_async<4>(tile + Layout::at(lane + 32 * j, row), from, valid ? 4 : 0);
        }
    }
}

// Forward's column n: output position (sample, oh, ow), whose window's tap
// (0, 0) is input (oh stride - pad, ow stride - pad).
__device__ __forceinline__ WindowColumn output_column(const Geometry& g, int64_t n) {
    if (n >= int64_t{g.batch} * g.positions) return {-1, 0, 0};
    int sample, position, oh, ow;
    g.by_positions.divide(static_cast<std::uint32_t>(n), sample, position);
    g.by_out_width.divide(static_cast<std::uint32_t>(position), oh, ow);
    return {sample, oh * g.stride_height - g.pad_height, ow * g.stride_width - g.pad_width};
}

// Forward: block (x, y) owns output channels [y block_m, (y + 1) block_m) at
// the flattened (sample, oh, ow) positions [x block_n, (x + 1) block_n); the
// epilogue adds the bias and
// applies the activation before the single store.
template <typename T, bool bf16, bool weight_vectorised>
__global__ void __launch_bounds__(T::threads, (resident_blocks<T, TileLayout<true, bf16, T::block_m>,
                                                                TileLayout<false, bf16, T::block_n>>))
    forward_kernel(Geometry g, const float* __restrict__ input, const float* __restrict__ weight,
                   const float* __restrict__ bias, ops::Activation activation, float negative_slope,
                   float* __restrict__ output) {
    using A = TileLayout<true, bf16, T::block_m>;   // weight [Cout, Cin*RS]
    using B = TileLayout<false, bf16, T::block_n>;  // unfolded input [Cin*RS, N*P]
    LADON_DYNAMIC_SHARED(float, shared);
    const int row0 = static_cast<int>(blockIdx.y) * T::block_m, column0 = static_cast<int>(blockIdx.x) * T::block_n;
    const int k_count = g.in_channels * g.window;
    const int lane = static_cast<int>(threadIdx.x % 32);
    WindowColumn columns[T::block_n / 32];
#pragma unroll
    for (int j = 0; j < T::block_n / 32; ++j) columns[j] = output_column(g, column0 + lane + 32 * j);
    const WindowSource windows{input, g.in_channels, g.in_height, g.in_width, k_count, g.by_window, g.by_kernel_width};
    const auto issue_a = [&](float* tile, int t) {
        if constexpr (weight_vectorised)
            copy_rows_vectorised<T, A>(tile, weight, k_count, g.out_channels, k_count, row0, t * block_k);
        else
            copy_k_major_gathered<T, A>(tile, weight, k_count, g.out_channels, row0, t * block_k, k_count,
                                     [](int64_t k) { return k; });
    };
    const auto issue_b = [&](float* tile, int t) { copy_windows<T, B, false>(tile, windows, columns, t * block_k); };
    typename T::Sums sums = {};
    multiply<T, A, B, bf16>(shared, (k_count + block_k - 1) / block_k, issue_a, issue_b, sums);

    for_each_sum<T>(sums, [&](int r, int c, float value) {
        const int channel = row0 + r, n = column0 + c;
        if (channel >= g.out_channels || n >= g.batch * g.positions) return;
        int sample, position;
        g.by_positions.divide(static_cast<std::uint32_t>(n), sample, position);
        if (bias != nullptr) value += bias[channel];
        output[(int64_t{sample} * g.out_channels + channel) * g.positions + position] =
            elementwise::activate(activation, negative_slope, value);
    });
}

// Backward data, decomposed by stride phase so that no zero tap is
// multiplied: input pixels whose (ih + pad) leaves the same remainders
// (py, px) by the strides receive exactly the taps r = py + i stride_height,
// s = px + j stride_width, from output (oh, ow) = (Y - i, X - j) with
// Y = (ih + pad_height) / stride_height (likewise X). Block z takes phase z;
// within it, C[Cin, N * rows * columns] += A[Cin, (co, i, j)] x B[(co, i, j),
// pixels]. Stride 1 is one phase holding every tap.
struct Phase {
    int py, px;                // the phase: (ih + pad) mod stride
    int ih0, iw0;              // its first input row and column
    int rows, columns;         // its input rows and columns
    int y0, x0;                // Y and X of (ih0, iw0)
    int taps_h, taps_w, taps;  // kernel rows, columns and taps that reach it
};

// The phase of block z; every thread computes the same.
__device__ __forceinline__ Phase phase_of(const Geometry& g, int z) {
    Phase p;
    p.py = z / g.stride_width, p.px = z % g.stride_width;
    p.ih0 = ((p.py - g.pad_height) % g.stride_height + g.stride_height) % g.stride_height;
    p.iw0 = ((p.px - g.pad_width) % g.stride_width + g.stride_width) % g.stride_width;
    p.rows = p.ih0 < g.in_height ? (g.in_height - p.ih0 + g.stride_height - 1) / g.stride_height : 0;
    p.columns = p.iw0 < g.in_width ? (g.in_width - p.iw0 + g.stride_width - 1) / g.stride_width : 0;
    p.y0 = (p.ih0 + g.pad_height) / g.stride_height, p.x0 = (p.iw0 + g.pad_width) / g.stride_width;
    p.taps_h = p.py < g.kernel_height ? (g.kernel_height - p.py + g.stride_height - 1) / g.stride_height : 0;
    p.taps_w = p.px < g.kernel_width ? (g.kernel_width - p.px + g.stride_width - 1) / g.stride_width : 0;
    p.taps = p.taps_h * p.taps_w;
    return p;
}

// The divisors of a phase with taps and pixels (none may be 0).
struct PhaseDivisors {
    FastDivisor by_taps_w, by_taps, by_columns, by_pixels;
};

// Backward data's column n: pixel (sample, a, b) of the phase, whose tap
// (0, 0) is output (Y, X); tap (i, j) reads grad_output at (Y - i, X - j).
__device__ __forceinline__ WindowColumn pixel_column(const Geometry& g, const Phase& p, const PhaseDivisors& d,
                                                     int64_t n) {
    if (n >= int64_t{g.batch} * p.rows * p.columns) return {-1, 0, 0};
    int sample, pixel, a, b;
    d.by_pixels.divide(static_cast<std::uint32_t>(n), sample, pixel);
    d.by_columns.divide(static_cast<std::uint32_t>(pixel), a, b);
    return {sample, p.y0 + a, p.x0 + b};
}

// A phase no kernel tap reaches (stride > kernel) gets no gradient. Its
// first write still stores 0 over the block's tile, so the slot keeps
// nothing of an earlier step; adding 0 writes nothing.
template <typename T>
__device__ __forceinline__ void store_zero_phase_tile(const Geometry& g, const Phase& p, float* __restrict__ grad_input,
                                                      int row0, int column0, int n_count) {
    const FastDivisor by_columns(static_cast<std::uint32_t>(p.columns)),
        by_pixels(static_cast<std::uint32_t>(p.rows * p.columns));
    for (int e = static_cast<int>(threadIdx.x); e < T::block_m * T::block_n; e += T::threads) {
        const int channel = row0 + e / T::block_n, n = column0 + e % T::block_n;
        if (channel >= g.in_channels || n >= n_count) continue;
        int sample, pixel, a, b;
        by_pixels.divide(static_cast<std::uint32_t>(n), sample, pixel);
        by_columns.divide(static_cast<std::uint32_t>(pixel), a, b);
        const int ih = p.ih0 + a * g.stride_height, iw = p.iw0 + b * g.stride_width;
        grad_input[(int64_t{sample} * g.in_channels + channel) * g.pixels + ih * g.in_width + iw] = 0.0f;
    }
}

// Backward data: block (x, y, z) owns input channels [y block_m, (y + 1)
// block_m) at pixels [x block_n, (x + 1) block_n) of phase z's flattened
// (sample, a, b) axis; A = weight[co][ci][py + i stride][px + j stride] as
// [Cin, (co, i, j)]. Each grad_input element gets one += (or =) from one lane.
template <typename T, bool bf16>
__global__ void __launch_bounds__(T::threads, (resident_blocks<T, TileLayout<true, bf16, T::block_m>,
                                                                TileLayout<false, bf16, T::block_n>>))
    backward_data_kernel(Geometry g, const float* __restrict__ weight, const float* __restrict__ grad_output,
                         float* __restrict__ grad_input, bool accumulate) {
    using A = TileLayout<true, bf16, T::block_m>;   // weight^T [Cin, Cout*taps]
    using B = TileLayout<false, bf16, T::block_n>;  // grad_output taps [Cout*taps, N*rows*columns]
    LADON_DYNAMIC_SHARED(float, shared);
    const Phase p = phase_of(g, static_cast<int>(blockIdx.z));
    const int row0 = static_cast<int>(blockIdx.y) * T::block_m, column0 = static_cast<int>(blockIdx.x) * T::block_n;
    const int n_count = g.batch * p.rows * p.columns, k_count = g.out_channels * p.taps;
    if (column0 >= n_count) return;  // the whole block is past the phase's pixels
    if (k_count == 0) {               // no tap reaches the phase: its gradient is 0
        if (!accumulate) store_zero_phase_tile<T>(g, p, grad_input, row0, column0, n_count);
        return;
    }
    const PhaseDivisors d{FastDivisor(static_cast<std::uint32_t>(p.taps_w)),
                          FastDivisor(static_cast<std::uint32_t>(p.taps)),
                          FastDivisor(static_cast<std::uint32_t>(p.columns)),
                          FastDivisor(static_cast<std::uint32_t>(p.rows * p.columns))};
    const int lane = static_cast<int>(threadIdx.x % 32);
    WindowColumn columns[T::block_n / 32];
#pragma unroll
    for (int j = 0; j < T::block_n / 32; ++j) columns[j] = pixel_column(g, p, d, column0 + lane + 32 * j);
    const WindowSource taps{grad_output, g.out_channels, g.out_height, g.out_width, k_count, d.by_taps, d.by_taps_w};
    const auto issue_a = [&](float* tile, int t) {
        copy_k_major_gathered<T, A>(tile, weight, g.window, g.in_channels, row0, t * block_k, k_count, [&](int64_t k) {
            int channel, tap, i, j;
            d.by_taps.divide(static_cast<std::uint32_t>(k), channel, tap);
            d.by_taps_w.divide(static_cast<std::uint32_t>(tap), i, j);
            return int64_t{channel} * g.in_channels * g.window + (p.py + i * g.stride_height) * g.kernel_width +
                   p.px + j * g.stride_width;
        });
    };
    const auto issue_b = [&](float* tile, int t) {
        copy_windows<T, B, true>(tile, taps, columns, t * block_k);
    };
    typename T::Sums sums = {};
    multiply<T, A, B, bf16>(shared, (k_count + block_k - 1) / block_k, issue_a, issue_b, sums);

    for_each_sum<T>(sums, [&](int r, int c, float value) {
        const int channel = row0 + r, n = column0 + c;
        if (channel >= g.in_channels || n >= n_count) return;
        int sample, pixel, a, b;
        d.by_pixels.divide(static_cast<std::uint32_t>(n), sample, pixel);
        d.by_columns.divide(static_cast<std::uint32_t>(pixel), a, b);
        const int ih = p.ih0 + a * g.stride_height, iw = p.iw0 + b * g.stride_width;
        float& out = grad_input[(int64_t{sample} * g.in_channels + channel) * g.pixels + ih * g.in_width + iw];
        out = accumulate ? out + value : value;
    });
}

// Backward filter's B tile, k-major (64 rows of n = (ci, r, s), 32 columns of
// k = (sample, oh, ow)): lane l decodes k0 + l once per tile; the rows' (ci,
// r, s) come from `rows_table`, decoded once per block. A warp's copy is 32
// consecutive floats of one tile row.
struct FilterRow {
    int channel_offset;  // ci * H * W; -1 past the end
    int r, s;
};

template <typename T, typename Layout>
__device__ __forceinline__ void copy_unfolded_input_transposed(float* tile, const Geometry& g, const float* input,
                                                               const FilterRow* rows_table, int64_t k0,
                                                               int64_t k_end) {
    const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
    const int64_t k = k0 + lane;
    const bool k_valid = k < k_end;
    int sample = 0, position = 0, oh = 0, ow = 0;
    if (k_valid) {
        g.by_positions.divide(static_cast<std::uint32_t>(k), sample, position);
        g.by_out_width.divide(static_cast<std::uint32_t>(position), oh, ow);
    }
    const float* const sample_input = input + int64_t{sample} * g.in_channels * g.pixels;
    const int top = oh * g.stride_height - g.pad_height, left = ow * g.stride_width - g.pad_width;
#pragma unroll 4
    for (int row = warp; row < Layout::rows; row += T::warps) {
        const FilterRow f = rows_table[row];
        const int ih = top + f.r, iw = left + f.s;
        const bool valid =
            k_valid && f.channel_offset >= 0 && ih >= 0 && ih < g.in_height && iw >= 0 && iw < g.in_width;
        const float* source = valid ? sample_input + f.channel_offset + ih * g.in_width + iw : input;
        tensor_core::cp_async<4>(tile + Layout::at(row, lane), source, valid ? 4 : 0);
    }
}

// Backward filter: block (x, y, z) owns grad_weight[64y.., 64x..] of the
// [Cout, Cin*RS] matrix for the z-th run of `split_length` of the (sample,
// position) reduction. With one run it adds into grad_weight; otherwise it
// overwrites its slice z of `partials` [gridDim.z, Cout, Cin*RS], which
// conv2d_sum_partials_kernel adds in z order: the same bits on every run.
// Always 64 x 64 tiles: its products are small (Cout x Cin*RS) and it fills
// the GPU by splitting K instead.
using FilterTiles = SmallTiles;

// Its static shared memory: the row table.
constexpr std::size_t filter_table_bytes = sizeof(FilterRow) * FilterTiles::block_n;

template <bool bf16>
__global__ void __launch_bounds__(FilterTiles::threads,
                                  (resident_blocks<FilterTiles, TileLayout<true, bf16, FilterTiles::block_m>,
                                                   TileLayout<true, bf16, FilterTiles::block_n>, filter_table_bytes>))
    backward_filter_kernel(Geometry g, const float* __restrict__ input, const float* __restrict__ grad_output,
                           int split_length, float* __restrict__ grad_weight, float* __restrict__ partials) {
    using T = FilterTiles;
    using A = TileLayout<true, bf16, T::block_m>;  // grad_output [Cout, N*P]
    using B = TileLayout<true, bf16, T::block_n>;  // unfolded input^T, stored [Cin*RS, N*P]
    LADON_DYNAMIC_SHARED(float, shared);
    LADON_SHARED(FilterRow, rows_table, [T::block_n]);
    const int row0 = static_cast<int>(blockIdx.y) * T::block_m, column0 = static_cast<int>(blockIdx.x) * T::block_n;
    const int n_count = g.in_channels * g.window, reduction = g.batch * g.positions;
    for (int i = static_cast<int>(threadIdx.x); i < T::block_n; i += T::threads) {
        const int n = column0 + i;
        int channel = 0, tap = 0, r = 0, s = 0;
        if (n < n_count) {
            g.by_window.divide(static_cast<std::uint32_t>(n), channel, tap);
            g.by_kernel_width.divide(static_cast<std::uint32_t>(tap), r, s);
        }
        rows_table[i] = {n < n_count ? channel * g.pixels : -1, r, s};
    }
    __syncthreads();  // the table is read by every warp's copies
    const int k_begin = static_cast<int>(blockIdx.z) * split_length;
    const int k_end = k_begin + split_length < reduction ? k_begin + split_length : reduction;
    const auto issue_a = [&](float* tile, int t) {
        // A(co, (sample, p)) = grad_output[sample][co][p]
        copy_k_major_gathered<T, A>(tile, grad_output, g.positions, g.out_channels, row0, k_begin + t * block_k, k_end,
                                 [&](int64_t k) {
                                     int sample, position;
                                     g.by_positions.divide(static_cast<std::uint32_t>(k), sample, position);
                                     return int64_t{sample} * g.out_channels * g.positions + position;
                                 });
    };
    const auto issue_b = [&](float* tile, int t) {
        copy_unfolded_input_transposed<T, B>(tile, g, input, rows_table, k_begin + t * block_k, k_end);
    };
    typename T::Sums sums = {};
    multiply<T, A, B, bf16>(shared, (k_end - k_begin + block_k - 1) / block_k, issue_a, issue_b, sums);

    float* const slice = gridDim.z == 1 ? nullptr : partials + int64_t{blockIdx.z} * g.out_channels * n_count;
    for_each_sum<T>(sums, [&](int r, int c, float value) {
        const int channel = row0 + r, n = column0 + c;
        if (channel >= g.out_channels || n >= n_count) return;
        const int64_t at = int64_t{channel} * n_count + n;
        if (slice == nullptr)
            grad_weight[at] += value;
        else
            slice[at] = value;
    });
}

}  // namespace ladon::cuda::tc_conv
