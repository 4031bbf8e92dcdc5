#pragma once
// Device code for the dense layer: a tiled SGEMM with a bias + activation
// epilogue, and the bias gradient's column sum. Included by gemm.cu only.
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/gemm.hpp"

namespace ladon::cuda::sgemm {

// A block computes a block_m x block_n tile of C with 256 threads laid out
// 16 x 16, each owning a thread_m x thread_n register block.
constexpr int block_m = 64;
constexpr int block_n = 64;
constexpr int block_k = 8;
constexpr int thread_m = 4;
constexpr int thread_n = 4;
constexpr int threads_per_block = (block_m / thread_m) * (block_n / thread_n);
// Shared rows are k-major and padded by 4 floats: the non-transposed loads
// write down a column (consecutive threads, consecutive k), and a stride of
// 68 floats puts those 32 stores in 32 different banks. The tiles are float4
// arrays so that a thread reads its 4 rows (or columns) at one k as one
// 16-byte load; the loads store single floats into them.
constexpr int tile_stride = block_m + 4;
static_assert(block_m == block_n, "one padded stride serves both tiles");
static_assert(thread_m == 4 && thread_n == 4 && tile_stride % 4 == 0, "register blocks are read as float4");
static_assert(block_m * block_k % threads_per_block == 0 && block_n * block_k % threads_per_block == 0);

// C = alpha · op(A) · op(B) + beta · C, + bias[column], then the activation.
// Decomposition: block (x, y) owns C's tile at rows y·64, columns x·64, and
// thread (tx, ty) its 4 x 4 outputs at rows ty·4.., columns tx·4... The block
// walks K in steps of 8: every thread loads 2 elements of A's 64 x 8 tile and
// 2 of B's 8 x 64 tile into shared memory (0 past any edge, so odd M, N, K
// need no other case), a barrier, 8 rank-1 updates of the registers from the
// tiles, a barrier before the next load. Each output is one thread's sum in
// k order: deterministic, no atomics. Loads follow the stored layout so that
// consecutive threads read consecutive addresses when the layout allows it.
template <bool transpose_a, bool transpose_b>
__global__ void __launch_bounds__(threads_per_block) sgemm_kernel(GemmArguments g) {
    // As floats: a_tile[k][m] = op(A)[row0 + m][k0 + k], b_tile[k][n] = op(B)[k0 + k][column0 + n].
    LADON_SHARED(float4, a_tile, [block_k][tile_stride / 4]);
    LADON_SHARED(float4, b_tile, [block_k][tile_stride / 4]);
    const int thread = static_cast<int>(threadIdx.x);
    const int tx = thread % (block_n / thread_n), ty = thread / (block_n / thread_n);
    const int64_t row0 = int64_t{blockIdx.y} * block_m, column0 = int64_t{blockIdx.x} * block_n;

    float sums[thread_m][thread_n] = {};
    for (int64_t k0 = 0; k0 < g.k; k0 += block_k) {
#pragma unroll
        for (int e = thread; e < block_m * block_k; e += threads_per_block) {
            // Stored [K, M] (transposed): consecutive threads along m; else along k.
            const int m = transpose_a ? e % block_m : e / block_k;
            const int k = transpose_a ? e / block_m : e % block_k;
            const int64_t row = row0 + m, depth = k0 + k;
            float value = 0.0f;
            if (row < g.m && depth < g.k) value = transpose_a ? g.a[depth * g.lda + row] : g.a[row * g.lda + depth];
            reinterpret_cast<float*>(a_tile[k])[m] = value;
        }
#pragma unroll
        for (int e = thread; e < block_n * block_k; e += threads_per_block) {
            // Stored [N, K] (transposed): consecutive threads along k; else along n.
            const int n = transpose_b ? e / block_k : e % block_n;
            const int k = transpose_b ? e % block_k : e / block_n;
            const int64_t column = column0 + n, depth = k0 + k;
            float value = 0.0f;
            if (column < g.n && depth < g.k)
                value = transpose_b ? g.b[column * g.ldb + depth] : g.b[depth * g.ldb + column];
            reinterpret_cast<float*>(b_tile[k])[n] = value;
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < block_k; ++k) {
            const float4 a4 = a_tile[k][ty], b4 = b_tile[k][tx];
            const float a_values[thread_m] = {a4.x, a4.y, a4.z, a4.w};
            const float b_values[thread_n] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
            for (int i = 0; i < thread_m; ++i)
#pragma unroll
                for (int j = 0; j < thread_n; ++j) sums[i][j] += a_values[i] * b_values[j];
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < thread_m; ++i) {
        const int64_t row = row0 + ty * thread_m + i;
        if (row >= g.m) continue;
#pragma unroll
        for (int j = 0; j < thread_n; ++j) {
            const int64_t column = column0 + tx * thread_n + j;
            if (column >= g.n) continue;
            float* const c = g.c + row * g.ldc + column;
            float value = g.alpha * sums[i][j];
            if (g.beta != 0.0f) value += g.beta * *c;  // beta == 0 never reads C (it may hold NaN)
            if (g.bias != nullptr) value += g.bias[column];
            *c = elementwise::activate(g.activation, g.negative_slope, value);
        }
    }
}

constexpr int bias_columns = 32;
constexpr int bias_row_groups = 8;

// grad_bias[o] += sum over n of grad_output[n, o], grad_output [batch, out].
// Block (32 x 8) owns 32 columns; thread (x, y) sums rows y, y + 8, ... of
// column x in row order (a warp reads 32 consecutive floats), the 8 partial
// sums meet in shared memory and thread y = 0 adds them in y order. A fixed
// order everywhere: the result is deterministic, no atomics.
__global__ void __launch_bounds__(bias_columns* bias_row_groups)
    bias_gradient_kernel(int64_t batch, int64_t out, const float* __restrict__ grad_output,
                         float* __restrict__ grad_bias) {
    LADON_SHARED(float, partial, [bias_row_groups][bias_columns]);
    const int x = static_cast<int>(threadIdx.x), y = static_cast<int>(threadIdx.y);
    const int64_t column = int64_t{blockIdx.x} * bias_columns + x;
    float sum = 0.0f;
    if (column < out)
        for (int64_t n = y; n < batch; n += bias_row_groups) sum += grad_output[n * out + column];
    partial[y][x] = sum;
    __syncthreads();
    if (y == 0 && column < out) {
        float total = 0.0f;
#pragma unroll
        for (int group = 0; group < bias_row_groups; ++group) total += partial[group][x];
        grad_bias[column] += total;
    }
}

}  // namespace ladon::cuda::sgemm
