// Atomics across many blocks on several workers: integer results exact,
// float sums within a tolerance (their order of addition varies).
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "emu/emu_test_support.hpp"
#include "kernels/cuda/atomics.cuh"

namespace ladon::emu_test {
namespace {

constexpr unsigned counter_blocks = 400, counter_threads = 128;

__global__ void count_threads(int* counter, unsigned long long* wide_counter, unsigned* block_counter) {
    atomicAdd(counter, 1);
    atomicAdd(wide_counter, 1ull << 33);
    if (threadIdx.x == 0) atomicAdd(block_counter, 1u);
}

TEST(EmuAtomics, IntegerCountersAreExactAcrossManyBlocks) {
    DeviceBuffer<int> counter(1);
    DeviceBuffer<unsigned long long> wide_counter(1);
    DeviceBuffer<unsigned> block_counter(1);
    counter.zero();
    wide_counter.zero();
    block_counter.zero();

    ASSERT_CUDA_SUCCESS(cuda::launch(count_threads, dim3(counter_blocks), dim3(counter_threads), 0, nullptr,
                                     counter.get(), wide_counter.get(), block_counter.get()));

    EXPECT_EQ(static_cast<int>(counter_blocks * counter_threads), counter.download()[0]);
    EXPECT_EQ((1ull << 33) * counter_blocks * counter_threads, wide_counter.download()[0]);
    EXPECT_EQ(counter_blocks, block_counter.download()[0]);
}

__global__ void sum_floats(const float* values, float* total) {
    atomicAdd(total, values[blockIdx.x * blockDim.x + threadIdx.x]);
}

TEST(EmuAtomics, FloatSumMatchesWithinTolerance) {
    std::vector<float> values(counter_blocks * counter_threads);
    double expected = 0;
    for (std::size_t i = 0; i < values.size(); ++i) {
        values[i] = 0.001f * static_cast<float>(i % 1000);
        expected += values[i];
    }
    DeviceBuffer<float> device_values(values), total(1);
    total.zero();

    ASSERT_CUDA_SUCCESS(cuda::launch(sum_floats, dim3(counter_blocks), dim3(counter_threads), 0, nullptr,
                                     device_values.get(), total.get()));

    EXPECT_NEAR(expected, total.download()[0], 1e-4 * expected);
}

// Extremes over all blocks; one claim per slot by compare-and-swap.
__global__ void extremes_and_claims(const int* values, int* maximum, int* minimum, float* float_maximum,
                                    unsigned* claims, int* winners) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    atomicMax(maximum, values[i]);
    atomicMin(minimum, values[i]);
    ladon_atomic_max_float(float_maximum, 0.5f * static_cast<float>(values[i]));
    // Every thread of a block tries to claim the block's slot; one wins.
    if (atomicCAS(&claims[blockIdx.x], 0u, threadIdx.x + 1) == 0u) atomicAdd(&winners[blockIdx.x], 1);
}

TEST(EmuAtomics, MaxMinAndCompareAndSwapAcrossBlocks) {
    const unsigned blocks = 50, threads = 64;
    std::vector<int> values(blocks * threads);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int>((i * 7919) % 10007) - 5000;
    DeviceBuffer<int> device_values(values), maximum(std::vector<int>{std::numeric_limits<int>::min()}),
        minimum(std::vector<int>{std::numeric_limits<int>::max()}), winners(blocks);
    DeviceBuffer<float> float_maximum(std::vector<float>{-INFINITY});
    DeviceBuffer<unsigned> claims(blocks);
    winners.zero();
    claims.zero();

    ASSERT_CUDA_SUCCESS(cuda::launch(extremes_and_claims, dim3(blocks), dim3(threads), 0, nullptr, device_values.get(),
                                     maximum.get(), minimum.get(), float_maximum.get(), claims.get(), winners.get()));

    int expected_maximum = values[0], expected_minimum = values[0];
    for (const int value : values) {
        expected_maximum = std::max(expected_maximum, value);
        expected_minimum = std::min(expected_minimum, value);
    }
    EXPECT_EQ(expected_maximum, maximum.download()[0]);
    EXPECT_EQ(expected_minimum, minimum.download()[0]);
    EXPECT_EQ(0.5f * static_cast<float>(expected_maximum), float_maximum.download()[0]);
    for (const int count : winners.download()) EXPECT_EQ(1, count);
    for (const unsigned claim : claims.download()) EXPECT_TRUE(claim >= 1 && claim <= threads) << claim;
}

__global__ void wrapping_counters(unsigned* increments, unsigned* decrements, int* exchanged) {
    atomicInc(increments, 9u);
    atomicDec(decrements, 9u);
    atomicExch(exchanged, 42);
}

TEST(EmuAtomics, IncAndDecWrapAtTheLimit) {
    DeviceBuffer<unsigned> increments(1), decrements(1);
    DeviceBuffer<int> exchanged(1);
    increments.zero();
    decrements.zero();

    // 25 calls: increments 0..9 wrap twice and stop at 5; decrements wrap from 0 to 9.
    ASSERT_CUDA_SUCCESS(cuda::launch(wrapping_counters, dim3(5), dim3(5), 0, nullptr, increments.get(),
                                     decrements.get(), exchanged.get()));

    EXPECT_EQ(5u, increments.download()[0]);
    EXPECT_EQ(5u, decrements.download()[0]);
    EXPECT_EQ(42, exchanged.download()[0]);
}

}  // namespace
}  // namespace ladon::emu_test
