// Block-shared memory through LADON_SHARED / LADON_DYNAMIC_SHARED: one copy
// per block, dynamic size chosen by the launch, and poisoned at the start of
// every block so a read before a write shows.
#include <cmath>
#include <cstdint>
#include <vector>

#include "emu/emu_test_support.hpp"

namespace ladon::emu_test {
namespace {

// Each block stages `count` values in dynamic shared memory, then thread 0
// writes them back in reverse: the buffer must hold `count` elements.
template <typename T>
__global__ void reverse_through_dynamic_shared(std::int64_t count, const T* input, T* output) {
    LADON_DYNAMIC_SHARED(T, staged);
    const std::int64_t offset = blockIdx.x * count;
    for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) staged[i] = input[offset + i];
    __syncthreads();
    if (threadIdx.x == 0)
        for (std::int64_t i = 0; i < count; ++i) output[offset + i] = staged[count - 1 - i];
}

template <typename T>
void expect_reversed_through_dynamic_shared(std::int64_t count) {
    const unsigned blocks = 3;
    std::vector<T> input(blocks * count);
    for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<T>(i);
    DeviceBuffer<T> device_input(input), device_output(input.size());

    ASSERT_CUDA_SUCCESS(cuda::launch(reverse_through_dynamic_shared<T>, dim3(blocks), dim3(32), count * sizeof(T),
                                     nullptr, count, device_input.get(), device_output.get()));

    const std::vector<T> output = device_output.download();
    for (unsigned b = 0; b < blocks; ++b)
        for (std::int64_t i = 0; i < count; ++i)
            ASSERT_EQ(input[b * count + count - 1 - i], output[b * count + i]) << "block " << b << ", element " << i;
}

TEST(EmuSharedMemory, DynamicSharedMemoryIsSizedAtLaunchForAnyType) {
    expect_reversed_through_dynamic_shared<float>(5);
    expect_reversed_through_dynamic_shared<float>(1000);
    expect_reversed_through_dynamic_shared<double>(777);
    expect_reversed_through_dynamic_shared<std::int16_t>(12000);  // 24000 bytes
}

// Thread 0 of each block reads shared memory before anyone wrote it in this
// block, then writes it: the next block must not see this block's value.
__global__ void read_before_write(float* static_seen, float* dynamic_seen) {
    LADON_SHARED(float, scratch, [4]);
    LADON_DYNAMIC_SHARED(float, dynamic_scratch);
    if (threadIdx.x == 0) {
        static_seen[blockIdx.x] = scratch[2];
        dynamic_seen[blockIdx.x] = dynamic_scratch[2];
        scratch[2] = 1.0f;
        dynamic_scratch[2] = 1.0f;
    }
}

TEST(EmuSharedMemory, EveryBlockStartsWithPoisonedSharedMemory) {
    const unsigned blocks = 20;
    DeviceBuffer<float> static_seen(blocks), dynamic_seen(blocks);

    ASSERT_CUDA_SUCCESS(cuda::launch(read_before_write, dim3(blocks), dim3(8), 4 * sizeof(float), nullptr,
                                     static_seen.get(), dynamic_seen.get()));

    for (const float value : static_seen.download()) EXPECT_TRUE(std::isnan(value)) << value;
    for (const float value : dynamic_seen.download()) EXPECT_TRUE(std::isnan(value)) << value;
}

// A shared scalar (empty dimensions), counted into with atomics.
__global__ void block_count_positive(const float* x, unsigned* counts) {
    LADON_SHARED(unsigned, positives, );
    if (threadIdx.x == 0) positives = 0;
    __syncthreads();
    if (x[blockIdx.x * blockDim.x + threadIdx.x] > 0.0f) atomicAdd(&positives, 1u);
    __syncthreads();
    if (threadIdx.x == 0) counts[blockIdx.x] = positives;
}

TEST(EmuSharedMemory, SharedScalarCollectsAtomicAddsOfItsBlock) {
    std::vector<float> x(4 * 64);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = i % 64 < 10 * (i / 64) ? 1.0f : -1.0f;
    DeviceBuffer<float> device_x(x);
    DeviceBuffer<unsigned> counts(4);

    ASSERT_CUDA_SUCCESS(
        cuda::launch(block_count_positive, dim3(4), dim3(64), 0, nullptr, device_x.get(), counts.get()));

    EXPECT_EQ((std::vector<unsigned>{0, 10, 20, 30}), counts.download());
}

__global__ void touch_dynamic_shared(float* output) {
    LADON_DYNAMIC_SHARED(float, buffer);
    buffer[threadIdx.x] = 1.0f;
    output[threadIdx.x] = buffer[threadIdx.x];
}

TEST(EmuSharedMemory, DynamicSharedMemoryOver48KiBNeedsTheKernelAttribute) {
    DeviceBuffer<float> output(1);
    const std::size_t bytes = 64 * 1024;

    EXPECT_EQ(cudaErrorInvalidValue,
              cuda::launch(touch_dynamic_shared, dim3(1), dim3(1), bytes, nullptr, output.get()));
    EXPECT_NE(std::string::npos,
              emu::last_error_message().find("65536 bytes of dynamic shared memory exceed the 49152"))
        << emu::last_error_message();
    EXPECT_EQ(cudaErrorInvalidValue, cudaGetLastError());

    ASSERT_CUDA_SUCCESS(cudaFuncSetAttribute(touch_dynamic_shared, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(bytes)));
    EXPECT_CUDA_SUCCESS(cuda::launch(touch_dynamic_shared, dim3(1), dim3(1), bytes, nullptr, output.get()));
    EXPECT_EQ(cudaErrorInvalidValue,
              cudaFuncSetAttribute(touch_dynamic_shared, cudaFuncAttributeMaxDynamicSharedMemorySize, 228 * 1024));
    cudaGetLastError();
}

}  // namespace
}  // namespace ladon::emu_test
