// Compiled by nvcc only (tests/emu/CMakeLists.txt): the sample kernels, the
// shared-memory macros and the launch helper build for sm_90 from the same
// source the emulator tests run on the CPU.
#include "emu/sample_kernels.cuh"
#include "kernels/cuda/atomics.cuh"
#include "kernels/cuda/tensor_core.cuh"

namespace ladon::emu_test::samples {

__global__ void running_max(const float* __restrict__ x, std::int64_t size, float* __restrict__ result) {
    const std::int64_t i = std::int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
    if (i < size) ladon_atomic_max_float(result, x[i]);
}

// A scalar in shared memory (empty dimensions) and atomics on it.
__global__ void block_count_positive(const float* __restrict__ x, unsigned* __restrict__ counts) {
    LADON_SHARED(unsigned, positives, );
    if (threadIdx.x == 0) positives = 0;
    __syncthreads();
    if (x[blockIdx.x * blockDim.x + threadIdx.x] > 0.0f) atomicAdd(&positives, 1u);
    __syncthreads();
    if (threadIdx.x == 0) counts[blockIdx.x] = positives;
}

// Every tensor-core primitive, so nvcc assembles each one's inline PTX.
__global__ void tensor_core_primitives(const float* __restrict__ x, float* __restrict__ y) {
    namespace tc = ladon::cuda::tensor_core;
    LADON_SHARED(uint4, tile, [4][32]);
    tc::cp_async<16>(&tile[0][threadIdx.x], x + 4 * threadIdx.x, 12);
    tc::cp_async<8>(&tile[1][threadIdx.x], x + 2 * threadIdx.x);
    tc::cp_async<4>(&tile[2][threadIdx.x], x + threadIdx.x, 0);
    tc::cp_async_commit();
    tc::cp_async_wait<1>();
    tc::cp_async_wait<0>();
    __syncthreads();
    std::uint32_t a[4], b[2], one[1], two[2];
    tc::ldmatrix<4>(a, &tile[0][threadIdx.x]);
    tc::ldmatrix<2>(b, &tile[1][threadIdx.x]);
    tc::ldmatrix<1, true>(one, &tile[2][threadIdx.x]);
    tc::ldmatrix<2, true>(two, &tile[2][threadIdx.x]);
    tc::ldmatrix<4, true>(a, &tile[3][threadIdx.x]);
    tc::ldmatrix<1>(one, &tile[3][threadIdx.x]);
    const float c[4] = {x[0], x[1], x[2], x[3]};
    float d[4], e[4];
    const std::uint32_t b_tf32[2] = {tc::to_tf32(x[4]), tc::to_tf32(x[5])};
    tc::mma_m16n8k8_tf32(d, a, b_tf32, c);
    const std::uint32_t b_bf16[2] = {tc::pack_bf16x2(x[6], x[7]), one[0] ^ two[1]};
    tc::mma_m16n8k16_bf16(e, a, b_bf16, d);
    for (int i = 0; i < 4; ++i) y[4 * threadIdx.x + i] = e[i] + float(b[i % 2]);
}

cudaError_t smoke_launches(const float* a, const float* b, float* c, double* sums, float* maximum,
                           cudaStream_t stream) {
    cudaError_t error = launch_tiled_sgemm({37, 53, 29}, a, b, c, stream);
    if (error == cudaSuccess) error = launch_row_sum<float>(4, 100, a, c, 128, stream);
    if (error == cudaSuccess) error = launch_row_sum<double>(4, 100, sums, sums + 400, 64, stream);
    if (error == cudaSuccess)
        error =
            ladon::cuda::launch(block_count_positive, dim3(2), dim3(128), 0, stream, a, reinterpret_cast<unsigned*>(c));
    if (error == cudaSuccess) error = ladon::cuda::launch(running_max, dim3(4), dim3(256), 0, stream, a, 1000, maximum);
    if (error == cudaSuccess) error = ladon::cuda::launch(tensor_core_primitives, dim3(1), dim3(32), 0, stream, a, c);
    return error;
}

}  // namespace ladon::emu_test::samples
