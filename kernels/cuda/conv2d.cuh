#pragma once
// Device code for conv2d as implicit GEMM: no im2col buffer; the unfolded
// operand is gathered from the tensor itself as each tile is loaded. With
// RS = kernel_height * kernel_width and P = out_height * out_width:
//   forward          C[Cout, N*P]     = weight[Cout, Cin*RS] x unfolded input[Cin*RS, N*P]
//   backward data    C[Cin, N*H*W]   += weight^T[Cin, Cout*RS] x gathered grad_output[Cout*RS, N*H*W]
//   backward filter  C[Cout, Cin*RS] += grad_output[Cout, N*P] x unfolded input^T[N*P, Cin*RS]
// One block computes one 64x64 tile of C over the whole K range (backward
// filter: over a fixed run of it, the runs' partials then added in order), so
// every output element is summed in a fixed order: deterministic.
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/ops.hpp"

namespace ladon::cuda::conv2d_detail {

// A block is 256 threads as a 16x16 grid; each thread owns a 4x4 register
// block of C at rows ty + 16i and columns tx + 16j (strided, so a warp's
// stores are coalesced and its shared-memory reads are broadcasts or
// consecutive). K advances 16 at a time through shared memory.
constexpr int tile_m = 64;
constexpr int tile_n = 64;
constexpr int tile_k = 16;
constexpr int threads_per_block = 256;
constexpr int threads_x = 16;
constexpr int per_thread = 4;  // rows and columns of C per thread
static_assert(threads_x * per_thread == tile_m && threads_x * per_thread == tile_n);
static_assert(tile_m * tile_k == threads_per_block * 4 && tile_n * tile_k == threads_per_block * 4);

// The shape with the output size precomputed (Conv2dShape's constexpr members
// are host functions under nvcc).
struct ConvGeometry {
    int64_t batch, in_channels, in_height, in_width;
    int64_t out_channels, out_height, out_width;
    int64_t kernel_height, kernel_width, stride_height, stride_width, pad_height, pad_width;
};

// A stored operand A[rows, columns] whose columns come in chunks of `chunk`
// contiguous floats: A(row, column) = data[(column / chunk) * chunk_stride +
// row * row_stride + column % chunk]. Covers the weight as [Cout, Cin*RS]
// (one chunk), the weight as [Cin, Cout*RS] (chunks of RS), and grad_output
// as [Cout, N*P] (chunks of P, one per sample). `vectorised` (set by the host)
// means every run of 4 columns starting at a multiple of 4 is one aligned
// float4: chunk, chunk_stride and row_stride multiples of 4, data 16-byte aligned.
struct ChunkedRows {
    const float* data;
    int64_t rows, columns, chunk, chunk_stride, row_stride;
    bool vectorised;

    __device__ __forceinline__ int64_t offset(int64_t row, int64_t column) const {
        return (column / chunk) * chunk_stride + row * row_stride + column % chunk;
    }
    __device__ __forceinline__ float operator()(int64_t row, int64_t column) const { return data[offset(row, column)]; }
    __device__ __forceinline__ float4 load4(int64_t row, int64_t column) const {
        return *reinterpret_cast<const float4*>(data + offset(row, column));
    }
};

// Element (row, position) of the unfolded input: row = (ci, r, s) of the
// kernel window, position = (n, oh, ow) of the output; 0 in the padding.
__device__ __forceinline__ float unfolded_input(const ConvGeometry& g, const float* input, int64_t row,
                                                int64_t position) {
    const int64_t s = row % g.kernel_width, r = row / g.kernel_width % g.kernel_height,
                  ci = row / (g.kernel_width * g.kernel_height);
    const int64_t ow = position % g.out_width, oh = position / g.out_width % g.out_height,
                  n = position / (g.out_width * g.out_height);
    const int64_t ih = oh * g.stride_height - g.pad_height + r, iw = ow * g.stride_width - g.pad_width + s;
    if (ih < 0 || ih >= g.in_height || iw < 0 || iw >= g.in_width) return 0.0f;
    return input[((n * g.in_channels + ci) * g.in_height + ih) * g.in_width + iw];
}

// The n-fastest loaders below split a gather in two: column(n) decodes the
// thread's fixed column of B once, before the K loop (64-bit divisions);
// load(column, k) then only decodes the kernel tap k, in 32-bit arithmetic
// (the host checks that Cin*RS and Cout*RS fit).

// Forward's B: the unfolded input, column n = (sample, oh, ow).
struct InputWindows {
    ConvGeometry g;
    const float* input;
    struct Column {
        const float* sample;  // input + sample * Cin*H*W
        int64_t top, left;    // input row and column of tap (0, 0); may lie in the padding
    };
    __device__ __forceinline__ Column column(int64_t n) const {
        const int64_t ow = n % g.out_width, oh = n / g.out_width % g.out_height,
                      sample = n / (g.out_width * g.out_height);
        return {input + sample * g.in_channels * g.in_height * g.in_width, oh * g.stride_height - g.pad_height,
                ow * g.stride_width - g.pad_width};
    }
    // Row k = (ci, r, s).
    __device__ __forceinline__ float load(const Column& c, int64_t k) const {
        const int row = static_cast<int>(k), kernel_width = static_cast<int>(g.kernel_width),
                  kernel_height = static_cast<int>(g.kernel_height);
        const int s = row % kernel_width, r = row / kernel_width % kernel_height,
                  ci = row / (kernel_width * kernel_height);
        const int64_t ih = c.top + r, iw = c.left + s;
        if (ih < 0 || ih >= g.in_height || iw < 0 || iw >= g.in_width) return 0.0f;
        return c.sample[(ci * g.in_height + ih) * g.in_width + iw];
    }
};

// Backward data's B: row k = (co, r, s), column n = (sample, ih, iw) of the
// input; grad_output at the output position whose window puts tap (r, s) on
// that pixel, 0 if there is none (a stride gap or past the border).
struct GradOutputTaps {
    ConvGeometry g;
    const float* grad_output;
    struct Column {
        const float* sample;  // grad_output + sample * Cout*OH*OW
        int64_t y, x;         // ih + pad_height, iw + pad_width
    };
    __device__ __forceinline__ Column column(int64_t n) const {
        const int64_t iw = n % g.in_width, ih = n / g.in_width % g.in_height, sample = n / (g.in_width * g.in_height);
        return {grad_output + sample * g.out_channels * g.out_height * g.out_width, ih + g.pad_height,
                iw + g.pad_width};
    }
    __device__ __forceinline__ float load(const Column& c, int64_t k) const {
        const int row = static_cast<int>(k), kernel_width = static_cast<int>(g.kernel_width),
                  kernel_height = static_cast<int>(g.kernel_height);
        const int s = row % kernel_width, r = row / kernel_width % kernel_height,
                  co = row / (kernel_width * kernel_height);
        const int64_t y = c.y - r, x = c.x - s;
        if (y < 0 || x < 0 || y % g.stride_height != 0 || x % g.stride_width != 0) return 0.0f;
        const int64_t oh = y / g.stride_height, ow = x / g.stride_width;
        if (oh >= g.out_height || ow >= g.out_width) return 0.0f;
        return c.sample[(co * g.out_height + oh) * g.out_width + ow];
    }
};

// Backward filter's B: the unfolded input transposed, row k = (sample, oh,
// ow), column n = (ci, r, s). Consecutive threads take consecutive k here, so
// each thread's k changes every load: one 64-bit decode per element.
struct UnfoldedInputTransposed {
    ConvGeometry g;
    const float* input;
    __device__ __forceinline__ float operator()(int64_t k, int64_t n) const { return unfolded_input(g, input, n, k); }
};

// The main loop shared by the three kernels: accumulates the block's 64x64
// tile of A[M, K] x B[K, N] into each thread's 4x4 registers. A is loaded
// with consecutive threads on consecutive columns (its contiguous dimension),
// as float4 when A.vectorised. B is a gather; consecutive threads take
// consecutive n (LoadB has column(n) and load(column, k)), or consecutive k
// when `b_k_fastest` (backward filter, whose B is contiguous along k; LoadB
// is then called as load_b(k, n)). Out-of-range elements load as 0, so edge
// tiles need no special case; every thread reaches every barrier.
template <bool b_k_fastest, typename LoadB>
__device__ __forceinline__ void multiply_tiles(const ChunkedRows& a, int64_t n_count, int64_t k_begin, int64_t k_end,
                                               LoadB load_b, float (&accumulator)[per_thread][per_thread]) {
    LADON_SHARED(float, a_tile, [tile_k][tile_m]);  // transposed: a_tile[k][m]
    LADON_SHARED(float, b_tile, [tile_k][tile_n]);
    const int thread = static_cast<int>(threadIdx.x);
    const int tx = thread % threads_x, ty = thread / threads_x;
    const int64_t m0 = int64_t{blockIdx.y} * tile_m, n0 = int64_t{blockIdx.x} * tile_n;
    // n-fastest loads: each thread's column of the B tile never changes.
    [[maybe_unused]] const int b_column = thread % tile_n;
    [[maybe_unused]] const int64_t b_n = n0 + b_column;
    [[maybe_unused]] const auto b_gather = [&] {
        if constexpr (b_k_fastest)
            return 0;
        else
            return load_b.column(b_n < n_count ? b_n : 0);
    }();

    for (int64_t k0 = k_begin; k0 < k_end; k0 += tile_k) {
        if (a.vectorised) {
            // 64 rows x 4 float4: one per thread. K is a multiple of 4 here.
            const int row = thread / 4, column = thread % 4 * 4;
            const int64_t m = m0 + row, k = k0 + column;
            float4 value{0.0f, 0.0f, 0.0f, 0.0f};
            if (m < a.rows && k < k_end) value = a.load4(m, k);
            a_tile[column][row] = value.x;
            a_tile[column + 1][row] = value.y;
            a_tile[column + 2][row] = value.z;
            a_tile[column + 3][row] = value.w;
        } else {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const int row = thread / tile_k + i * (threads_per_block / tile_k), column = thread % tile_k;
                const int64_t m = m0 + row, k = k0 + column;
                a_tile[column][row] = m < a.rows && k < k_end ? a(m, k) : 0.0f;
            }
        }
        if constexpr (b_k_fastest) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const int row = thread % tile_k, column = thread / tile_k + i * (threads_per_block / tile_k);
                const int64_t k = k0 + row, n = n0 + column;
                b_tile[row][column] = k < k_end && n < n_count ? load_b(k, n) : 0.0f;
            }
        } else {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const int row = thread / tile_n + i * (threads_per_block / tile_n);
                const int64_t k = k0 + row;
                b_tile[row][b_column] = k < k_end && b_n < n_count ? load_b.load(b_gather, k) : 0.0f;
            }
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < tile_k; ++k) {
            float a_values[per_thread], b_values[per_thread];
#pragma unroll
            for (int i = 0; i < per_thread; ++i) a_values[i] = a_tile[k][ty + i * threads_x];
#pragma unroll
            for (int j = 0; j < per_thread; ++j) b_values[j] = b_tile[k][tx + j * threads_x];
#pragma unroll
            for (int i = 0; i < per_thread; ++i)
#pragma unroll
                for (int j = 0; j < per_thread; ++j) accumulator[i][j] += a_values[i] * b_values[j];
        }
        __syncthreads();
    }
}

// Calls store(m, n, value) for each of the thread's in-range elements of C.
template <typename Store>
__device__ __forceinline__ void store_tile(int64_t m_count, int64_t n_count,
                                           const float (&accumulator)[per_thread][per_thread], Store store) {
    const int thread = static_cast<int>(threadIdx.x);
    const int tx = thread % threads_x, ty = thread / threads_x;
    const int64_t m0 = int64_t{blockIdx.y} * tile_m, n0 = int64_t{blockIdx.x} * tile_n;
#pragma unroll
    for (int i = 0; i < per_thread; ++i)
#pragma unroll
        for (int j = 0; j < per_thread; ++j) {
            const int64_t m = m0 + ty + i * threads_x, n = n0 + tx + j * threads_x;
            if (m < m_count && n < n_count) store(m, n, accumulator[i][j]);
        }
}

// Forward: block (x, y) owns output channels [64y, 64y + 64) at the 64 output
// positions [64x, 64x + 64) of the flattened (sample, oh, ow) axis; A = weight
// [Cout, Cin*RS], B = unfolded input gathered per tile. The epilogue adds the
// bias and applies the activation before the single store.
__global__ void __launch_bounds__(threads_per_block)
    conv2d_forward_kernel(ConvGeometry g, ChunkedRows weight, const float* __restrict__ input,
                          const float* __restrict__ bias, ops::Activation activation, float negative_slope,
                          float* __restrict__ output) {
    const int64_t positions = g.out_height * g.out_width, n_count = g.batch * positions;
    float accumulator[per_thread][per_thread] = {};
    multiply_tiles<false>(weight, n_count, 0, weight.columns, InputWindows{g, input}, accumulator);
    store_tile(g.out_channels, n_count, accumulator, [&](int64_t m, int64_t n, float value) {
        if (bias != nullptr) value += bias[m];
        const int64_t sample = n / positions, position = n % positions;
        output[(sample * g.out_channels + m) * positions + position] =
            elementwise::activate(activation, negative_slope, value);
    });
}

// Backward data: block (x, y) owns input channels [64y, 64y + 64) at 64
// pixels of the flattened (sample, ih, iw) axis; A = weight viewed as
// [Cin, Cout*RS], B = grad_output gathered through the transposed index math.
// Each grad_input element gets one += (or =) from one thread.
__global__ void __launch_bounds__(threads_per_block)
    conv2d_backward_data_kernel(ConvGeometry g, ChunkedRows weight, const float* __restrict__ grad_output,
                                float* __restrict__ grad_input, bool accumulate) {
    const int64_t pixels = g.in_height * g.in_width, n_count = g.batch * pixels;
    float accumulator[per_thread][per_thread] = {};
    multiply_tiles<false>(weight, n_count, 0, weight.columns, GradOutputTaps{g, grad_output}, accumulator);
    store_tile(g.in_channels, n_count, accumulator, [&](int64_t m, int64_t n, float value) {
        const int64_t sample = n / pixels, pixel = n % pixels;
        float& out = grad_input[(sample * g.in_channels + m) * pixels + pixel];
        out = accumulate ? out + value : value;
    });
}

// Backward filter: block (x, y, z) owns grad_weight[64y.., 64x..] of the
// [Cout, Cin*RS] matrix for the z-th of gridDim.z equal runs of the (sample,
// position) reduction, walked in order; A = grad_output as [Cout, N*P], B =
// unfolded input transposed. With one run the block adds into grad_weight;
// otherwise it overwrites its own slice z of `partials` [gridDim.z, Cout,
// Cin*RS], which conv2d_sum_partials_kernel then adds in z order: no atomics,
// the same bits on every run.
__global__ void __launch_bounds__(threads_per_block)
    conv2d_backward_filter_kernel(ConvGeometry g, ChunkedRows grad_output, const float* __restrict__ input,
                                  int64_t split_length, float* __restrict__ grad_weight, float* __restrict__ partials) {
    const int64_t n_count = g.in_channels * g.kernel_height * g.kernel_width;
    const int64_t k_begin = int64_t{blockIdx.z} * split_length;
    const int64_t k_end = k_begin + split_length < grad_output.columns ? k_begin + split_length : grad_output.columns;
    float accumulator[per_thread][per_thread] = {};
    multiply_tiles<true>(grad_output, n_count, k_begin, k_end, UnfoldedInputTransposed{g, input}, accumulator);
    if (gridDim.z == 1)
        store_tile(g.out_channels, n_count, accumulator,
                   [&](int64_t m, int64_t n, float value) { grad_weight[m * n_count + n] += value; });
    else {
        float* const slice = partials + int64_t{blockIdx.z} * g.out_channels * n_count;
        store_tile(g.out_channels, n_count, accumulator,
                   [&](int64_t m, int64_t n, float value) { slice[m * n_count + n] = value; });
    }
}

// grad_weight[i] += partials[0][i] + partials[1][i] + ... in that order; one
// thread per weight element, grid-stride.
__global__ void conv2d_sum_partials_kernel(int64_t size, int64_t splits, const float* __restrict__ partials,
                                           float* __restrict__ grad_weight) {
    const int64_t stride = int64_t{gridDim.x} * blockDim.x;
    for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < size; i += stride) {
        float sum = 0.0f;
        for (int64_t split = 0; split < splits; ++split) sum += partials[split * size + i];
        grad_weight[i] += sum;
    }
}

}  // namespace ladon::cuda::conv2d_detail
