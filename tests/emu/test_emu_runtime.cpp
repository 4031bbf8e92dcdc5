// The CUDA runtime calls the backend uses: memory, copies, streams, events,
// errors and device properties, with CUDA's codes and strings.
#include <cuda_fp16.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "emu/emu_test_support.hpp"

namespace ladon::emu_test {
namespace {

TEST(EmuRuntime, MallocMemcpyAndMemsetRoundTrip) {
    const std::vector<int> host{1, 2, 3, 4, 5};
    int* device = nullptr;
    int* copy = nullptr;
    ASSERT_CUDA_SUCCESS(cudaMalloc(reinterpret_cast<void**>(&device), 5 * sizeof(int)));
    ASSERT_CUDA_SUCCESS(cudaMalloc(reinterpret_cast<void**>(&copy), 5 * sizeof(int)));
    EXPECT_EQ(0u, reinterpret_cast<std::uintptr_t>(device) % 256);

    EXPECT_CUDA_SUCCESS(cudaMemcpy(device, host.data(), 5 * sizeof(int), cudaMemcpyHostToDevice));
    EXPECT_CUDA_SUCCESS(cudaMemcpyAsync(copy, device, 5 * sizeof(int), cudaMemcpyDeviceToDevice, nullptr));
    EXPECT_CUDA_SUCCESS(cudaMemsetAsync(copy + 3, 0, 2 * sizeof(int), nullptr));
    std::vector<int> back(5);
    EXPECT_CUDA_SUCCESS(cudaMemcpy(back.data(), copy, 5 * sizeof(int), cudaMemcpyDeviceToHost));
    EXPECT_EQ((std::vector<int>{1, 2, 3, 0, 0}), back);

    EXPECT_CUDA_SUCCESS(cudaMemset(device, 0xff, sizeof(int)));
    EXPECT_CUDA_SUCCESS(cudaMemcpy(back.data(), device, sizeof(int), cudaMemcpyDefault));
    EXPECT_EQ(-1, back[0]);

    EXPECT_CUDA_SUCCESS(cudaFree(device));
    EXPECT_CUDA_SUCCESS(cudaFree(copy));
    EXPECT_CUDA_SUCCESS(cudaFree(nullptr));
}

TEST(EmuRuntime, FreshDeviceMemoryIsPoisonedAsNaN) {
    DeviceBuffer<float> buffer(3);
    for (const float value : buffer.download()) EXPECT_TRUE(std::isnan(value));
}

TEST(EmuRuntime, DeviceRangesOutsideAnAllocationAreInvalidValue) {
    DeviceBuffer<float> buffer(4);
    std::vector<float> host(8);

    EXPECT_EQ(cudaErrorInvalidValue, cudaMemcpy(host.data(), buffer.get(), 5 * sizeof(float), cudaMemcpyDeviceToHost));
    EXPECT_NE(std::string::npos, emu::last_error_message().find("is not inside one cudaMalloc allocation"));
    EXPECT_EQ(cudaErrorInvalidValue, cudaMemcpy(host.data(), host.data() + 4, 16, cudaMemcpyHostToDevice));
    EXPECT_EQ(cudaErrorInvalidValue, cudaMemset(host.data(), 0, 4));
    EXPECT_EQ(cudaErrorInvalidMemcpyDirection,
              cudaMemcpy(host.data(), buffer.get(), 4, static_cast<cudaMemcpyKind>(7)));
    EXPECT_EQ(cudaErrorInvalidMemcpyDirection, cudaGetLastError());
    EXPECT_EQ(cudaSuccess, cudaGetLastError());
}

TEST(EmuRuntime, FreeOfAForeignPointerAndOversizedMallocFail) {
    int on_stack = 0;
    EXPECT_EQ(cudaErrorInvalidValue, cudaFree(&on_stack));

    void* huge = nullptr;
    EXPECT_EQ(cudaErrorMemoryAllocation, cudaMalloc(&huge, std::size_t{1} << 40));
    EXPECT_EQ(nullptr, huge);
    EXPECT_STREQ("out of memory", cudaGetErrorString(cudaGetLastError()));

    std::size_t free_bytes = 0, total_bytes = 0;
    EXPECT_CUDA_SUCCESS(cudaMemGetInfo(&free_bytes, &total_bytes));
    EXPECT_LE(free_bytes, total_bytes);
}

TEST(EmuRuntime, PinnedHostMemoryAllocatesAndFrees) {
    void* pinned = nullptr;
    ASSERT_CUDA_SUCCESS(cudaMallocHost(&pinned, 1000));
    std::memset(pinned, 1, 1000);
    EXPECT_CUDA_SUCCESS(cudaFreeHost(pinned));
    EXPECT_EQ(cudaErrorInvalidValue, cudaFreeHost(pinned));
    cudaGetLastError();
}

// Events recorded on the default stream run at once, so they time the host
// between them; on a created stream they run with its queue.
TEST(EmuRuntime, EventsMeasureTimeAndStreamCallsSucceed) {
    cudaStream_t stream = nullptr;
    cudaEvent_t start = nullptr, stop = nullptr;
    ASSERT_CUDA_SUCCESS(cudaStreamCreate(&stream));
    ASSERT_CUDA_SUCCESS(cudaEventCreate(&start));
    ASSERT_CUDA_SUCCESS(cudaEventCreate(&stop));

    float elapsed = -1;
    EXPECT_EQ(cudaErrorInvalidResourceHandle, cudaEventElapsedTime(&elapsed, start, stop));  // not recorded
    EXPECT_CUDA_SUCCESS(cudaEventRecord(start, nullptr));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_CUDA_SUCCESS(cudaEventRecord(stop, nullptr));
    EXPECT_CUDA_SUCCESS(cudaEventSynchronize(stop));
    EXPECT_CUDA_SUCCESS(cudaEventElapsedTime(&elapsed, start, stop));
    EXPECT_GE(elapsed, 19.0f);
    EXPECT_LT(elapsed, 2000.0f);
    EXPECT_CUDA_SUCCESS(cudaStreamWaitEvent(stream, stop, 0));
    EXPECT_CUDA_SUCCESS(cudaStreamSynchronize(stream));
    EXPECT_CUDA_SUCCESS(cudaStreamQuery(stream));
    EXPECT_CUDA_SUCCESS(cudaDeviceSynchronize());

    EXPECT_CUDA_SUCCESS(cudaEventDestroy(start));
    EXPECT_CUDA_SUCCESS(cudaEventDestroy(stop));
    EXPECT_CUDA_SUCCESS(cudaStreamDestroy(stream));
    EXPECT_EQ(cudaErrorInvalidResourceHandle, cudaStreamDestroy(stream));
    cudaGetLastError();
}

TEST(EmuRuntime, ErrorNamesAndStringsAreCudas) {
    EXPECT_STREQ("no error", cudaGetErrorString(cudaSuccess));
    EXPECT_STREQ("unspecified launch failure", cudaGetErrorString(cudaErrorLaunchFailure));
    EXPECT_STREQ("invalid configuration argument", cudaGetErrorString(cudaErrorInvalidConfiguration));
    EXPECT_STREQ("invalid argument", cudaGetErrorString(cudaErrorInvalidValue));
    EXPECT_STREQ("cudaErrorMemoryAllocation", cudaGetErrorName(cudaErrorMemoryAllocation));
    EXPECT_EQ(719, static_cast<int>(cudaErrorLaunchFailure));  // CUDA's own numbering
}

TEST(EmuRuntime, OneEmulatedDeviceWithItsProperties) {
    int count = 0, device = -1;
    EXPECT_CUDA_SUCCESS(cudaGetDeviceCount(&count));
    EXPECT_EQ(1, count);
    EXPECT_CUDA_SUCCESS(cudaSetDevice(0));
    EXPECT_CUDA_SUCCESS(cudaGetDevice(&device));
    EXPECT_EQ(0, device);
    EXPECT_EQ(cudaErrorInvalidDevice, cudaSetDevice(1));
    cudaGetLastError();

    cudaDeviceProp properties{};
    ASSERT_CUDA_SUCCESS(cudaGetDeviceProperties(&properties, 0));
    EXPECT_STREQ("ladon emulator", properties.name);
    EXPECT_EQ(32, properties.warpSize);
    EXPECT_EQ(49152u, properties.sharedMemPerBlock);
    EXPECT_EQ(9, properties.major);
    EXPECT_EQ(emu::worker_count(), properties.multiProcessorCount);
    EXPECT_GT(properties.totalGlobalMem, std::size_t{1} << 30);
}

__global__ void write_one(int* output) { output[threadIdx.x] = 1; }

TEST(EmuRuntime, LaunchOverTheThreadLimitIsAnInvalidConfiguration) {
    DeviceBuffer<int> output(2048);

    EXPECT_EQ(cudaErrorInvalidConfiguration, cuda::launch(write_one, dim3(1), dim3(2048), 0, nullptr, output.get()));
    EXPECT_NE(std::string::npos, emu::last_error_message().find("write_one(int*) with grid (1,1,1), block (2048,1,1)"))
        << emu::last_error_message();
    EXPECT_EQ(cudaErrorInvalidConfiguration, cudaPeekAtLastError());
    EXPECT_EQ(cudaErrorInvalidConfiguration, cudaGetLastError());
    EXPECT_EQ(cudaSuccess, cudaGetLastError());

    EXPECT_EQ(cudaErrorInvalidConfiguration,
              cuda::launch(write_one, dim3(1), dim3(32, 32, 2), 0, nullptr, output.get()));
    EXPECT_EQ(cudaErrorInvalidConfiguration, cuda::launch(write_one, dim3(0), dim3(32), 0, nullptr, output.get()));
    EXPECT_EQ(cudaErrorInvalidConfiguration,
              cuda::launch(write_one, dim3(1, 65536), dim3(32), 0, nullptr, output.get()));
    cudaGetLastError();
}

__global__ void early_return_before_barrier(int* output) {
    if (threadIdx.x == 3) return;
    __syncthreads();
    output[threadIdx.x] = 1;
}

TEST(EmuRuntime, KernelFaultIsReportedBySynchronisingCallsUntilRead) {
    DeviceBuffer<int> output(8);

    EXPECT_EQ(cudaErrorLaunchFailure,
              cuda::launch(early_return_before_barrier, dim3(1), dim3(8), 0, nullptr, output.get()));
    EXPECT_EQ(cudaErrorLaunchFailure, cudaDeviceSynchronize());
    EXPECT_EQ(cudaErrorLaunchFailure, cudaStreamSynchronize(nullptr));
    std::vector<int> host(8);
    EXPECT_EQ(cudaErrorLaunchFailure, cudaMemcpy(host.data(), output.get(), 8 * sizeof(int), cudaMemcpyDeviceToHost));
    EXPECT_EQ(cudaErrorLaunchFailure, cudaGetLastError());

    EXPECT_CUDA_SUCCESS(cudaDeviceSynchronize());
    EXPECT_CUDA_SUCCESS(cudaMemcpy(host.data(), output.get(), 8 * sizeof(int), cudaMemcpyDeviceToHost));
}

__global__ void throws_from_kernel(int*) { throw std::runtime_error("host call in a kernel"); }

TEST(EmuRuntime, ExceptionInAKernelIsAFaultNotACrash) {
    DeviceBuffer<int> output(1);

    expect_kernel_fault(cuda::launch(throws_from_kernel, dim3(2), dim3(4), 0, nullptr, output.get()),
                        {"throws_from_kernel", "the kernel threw: host call in a kernel"});
}

__constant__ float coefficients[4];

__global__ void apply_coefficients(float* output) { output[threadIdx.x] = coefficients[threadIdx.x] * 2.0f; }

TEST(EmuRuntime, MemcpyToSymbolFillsConstantMemory) {
    const float values[4] = {1, 2, 3, 4};
    ASSERT_CUDA_SUCCESS(cudaMemcpyToSymbol(coefficients, values, sizeof values));
    DeviceBuffer<float> output(4);

    ASSERT_CUDA_SUCCESS(cuda::launch(apply_coefficients, dim3(1), dim3(4), 0, nullptr, output.get()));

    EXPECT_EQ((std::vector<float>{2, 4, 6, 8}), output.download());
    float back[2] = {};
    EXPECT_CUDA_SUCCESS(cudaMemcpyFromSymbol(back, coefficients, sizeof back, 2 * sizeof(float)));
    EXPECT_EQ(3.0f, back[0]);
}

// cuda_fp16.h and friends agree with the emulator's runtime declarations.
__global__ void halve_into_half(const float* input, __half* output) {
    output[threadIdx.x] = __float2half(0.5f * input[threadIdx.x]);
}

TEST(EmuRuntime, HalfPrecisionHeadersWorkInEmulatedKernels) {
    DeviceBuffer<float> input(std::vector<float>{1.0f, 3.0f, -8.0f});
    DeviceBuffer<__half> output(3);

    ASSERT_CUDA_SUCCESS(cuda::launch(halve_into_half, dim3(1), dim3(3), 0, nullptr, input.get(), output.get()));

    const std::vector<__half> halves = output.download();
    EXPECT_EQ(0.5f, __half2float(halves[0]));
    EXPECT_EQ(-4.0f, __half2float(halves[2]));
}

}  // namespace
}  // namespace ladon::emu_test
