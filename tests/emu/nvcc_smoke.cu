// Compiled by nvcc only (tests/emu/CMakeLists.txt): the sample kernels, the
// shared-memory macros and the launch helper build for sm_90 from the same
// source the emulator tests run on the CPU.
#include "emu/sample_kernels.cuh"
#include "kernels/cuda/atomics.cuh"

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

cudaError_t smoke_launches(const float* a, const float* b, float* c, double* sums, float* maximum,
                           cudaStream_t stream) {
    cudaError_t error = launch_tiled_sgemm({37, 53, 29}, a, b, c, stream);
    if (error == cudaSuccess) error = launch_row_sum<float>(4, 100, a, c, 128, stream);
    if (error == cudaSuccess) error = launch_row_sum<double>(4, 100, sums, sums + 400, 64, stream);
    if (error == cudaSuccess)
        error =
            ladon::cuda::launch(block_count_positive, dim3(2), dim3(128), 0, stream, a, reinterpret_cast<unsigned*>(c));
    if (error == cudaSuccess) error = ladon::cuda::launch(running_max, dim3(4), dim3(256), 0, stream, a, 1000, maximum);
    return error;
}

}  // namespace ladon::emu_test::samples
