#pragma once
// Two kernels written as the CUDA backend will write them, compiled both by
// nvcc (nvcc_smoke.cu) and by g++ against the emulator (test_emu_samples.cpp):
// proof that one source serves the GPU and CI. Include from one file per
// binary (the kernels are ordinary non-inline functions).
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/launch.hpp"

namespace ladon::emu_test::samples {

// C[m, n] = A[m, k] · B[k, n], row-major.
struct SgemmShape {
    std::int64_t m, n, k;
};

constexpr int sgemm_tile = 16;

// One 16x16 block per 16x16 tile of C, one thread per element. The block
// walks along k in steps of 16: each thread loads one element of A's and one
// of B's tile into shared memory (zero past the edges), the block waits, every
// thread takes a 16-long dot product from the tiles, the block waits again
// before the next load overwrites them.
__global__ void __launch_bounds__(sgemm_tile* sgemm_tile)
    tiled_sgemm(SgemmShape shape, const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c) {
    LADON_SHARED(float, a_tile, [sgemm_tile][sgemm_tile]);
    LADON_SHARED(float, b_tile, [sgemm_tile][sgemm_tile]);
    const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
    const std::int64_t row = std::int64_t{blockIdx.y} * sgemm_tile + ty;
    const std::int64_t column = std::int64_t{blockIdx.x} * sgemm_tile + tx;
    float sum = 0.0f;
    for (std::int64_t k0 = 0; k0 < shape.k; k0 += sgemm_tile) {
        a_tile[ty][tx] = row < shape.m && k0 + tx < shape.k ? a[row * shape.k + k0 + tx] : 0.0f;
        b_tile[ty][tx] = k0 + ty < shape.k && column < shape.n ? b[(k0 + ty) * shape.n + column] : 0.0f;
        __syncthreads();
#pragma unroll
        for (int i = 0; i < sgemm_tile; ++i) sum += a_tile[ty][i] * b_tile[i][tx];
        __syncthreads();
    }
    if (row < shape.m && column < shape.n) c[row * shape.n + column] = sum;
}

inline cudaError_t launch_tiled_sgemm(const SgemmShape& shape, const float* a, const float* b, float* c,
                                      cudaStream_t stream) {
    const dim3 block(sgemm_tile, sgemm_tile);
    const dim3 grid(static_cast<unsigned>((shape.n + sgemm_tile - 1) / sgemm_tile),
                    static_cast<unsigned>((shape.m + sgemm_tile - 1) / sgemm_tile));
    return ladon::cuda::launch(tiled_sgemm, grid, block, 0, stream, shape, a, b, c);
}

template <typename T>
__device__ __forceinline__ T warp_sum(T value) {
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
    return value;
}

// out[r] = sum of row r of x[rows, columns]. One block per row; its threads
// stride along the row, each warp sums its threads' values with shuffles,
// warp totals meet in dynamic shared memory (one value per warp) and warp 0
// sums those. blockDim.x is a multiple of 32, at most 1024.
template <typename T>
__global__ void row_sum(std::int64_t columns, const T* __restrict__ x, T* __restrict__ out) {
    LADON_DYNAMIC_SHARED(T, warp_totals);
    const std::int64_t row = blockIdx.x;
    const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    T sum = 0;
    for (std::int64_t column = threadIdx.x; column < columns; column += blockDim.x) sum += x[row * columns + column];
    sum = warp_sum(sum);
    if (lane == 0) warp_totals[warp] = sum;
    __syncthreads();
    if (warp == 0) {
        T total = lane < warps ? warp_totals[lane] : T{0};
        total = warp_sum(total);
        if (lane == 0) out[row] = total;
    }
}

template <typename T>
cudaError_t launch_row_sum(std::int64_t rows, std::int64_t columns, const T* x, T* out, unsigned threads,
                           cudaStream_t stream) {
    return ladon::cuda::launch(row_sum<T>, dim3(static_cast<unsigned>(rows)), dim3(threads), threads / 32 * sizeof(T),
                               stream, columns, x, out);
}

}  // namespace ladon::emu_test::samples
