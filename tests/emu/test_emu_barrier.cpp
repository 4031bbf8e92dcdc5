// __syncthreads(): a barrier among a block's fibers. Correct code gives the
// plain loop's result in every fiber order; a missing barrier gives a wrong
// one; a barrier that only part of the block reaches is reported, not hung.
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "emu/emu_test_support.hpp"

namespace ladon::emu_test {
namespace {

constexpr unsigned reduction_threads = 256;

// One block per 256 inputs: each thread loads one value into shared memory,
// then a tree halves the active threads each step, a barrier between steps.
__global__ void block_sum(const float* input, float* block_sums) {
    LADON_SHARED(float, partial, [reduction_threads]);
    const unsigned t = threadIdx.x;
    partial[t] = input[blockIdx.x * blockDim.x + t];
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (t < stride) partial[t] += partial[t + stride];
        __syncthreads();
    }
    if (t == 0) block_sums[blockIdx.x] = partial[0];
}

TEST(EmuBarrier, SharedMemoryTreeReductionSumsEachBlock) {
    const unsigned blocks = 6;
    std::vector<float> input(blocks * reduction_threads);
    std::iota(input.begin(), input.end(), 0.0f);
    DeviceBuffer<float> device_input(input), device_sums(blocks);

    ASSERT_CUDA_SUCCESS(cuda::launch(block_sum, dim3(blocks), dim3(reduction_threads), 0, nullptr, device_input.get(),
                                     device_sums.get()));

    const std::vector<float> sums = device_sums.download();
    for (unsigned b = 0; b < blocks; ++b) {
        const float first = static_cast<float>(b * reduction_threads), last = first + reduction_threads - 1;
        EXPECT_EQ((first + last) * reduction_threads / 2, sums[b]) << "block " << b;
    }
}

constexpr int transpose_tile = 16;

// One 16x16 block per 16x16 tile: read a tile row-wise (coalesced), wait,
// write it transposed from shared memory; the +1 column avoids bank conflicts.
__global__ void tiled_transpose(int rows, int columns, const float* input, float* output) {
    LADON_SHARED(float, tile, [transpose_tile][transpose_tile + 1]);
    const int x = static_cast<int>(blockIdx.x * transpose_tile + threadIdx.x);
    const int y = static_cast<int>(blockIdx.y * transpose_tile + threadIdx.y);
    if (x < columns && y < rows) tile[threadIdx.y][threadIdx.x] = input[y * columns + x];
    __syncthreads();
    const int out_x = static_cast<int>(blockIdx.y * transpose_tile + threadIdx.x);
    const int out_y = static_cast<int>(blockIdx.x * transpose_tile + threadIdx.y);
    if (out_x < rows && out_y < columns) output[out_y * rows + out_x] = tile[threadIdx.x][threadIdx.y];
}

TEST(EmuBarrier, TiledTransposeMatchesPlainLoopOnOddShape) {
    const int rows = 37, columns = 53;
    std::vector<float> input(rows * columns);
    std::iota(input.begin(), input.end(), 1.0f);
    DeviceBuffer<float> device_input(input), device_output(input.size());
    const dim3 grid((columns + transpose_tile - 1) / transpose_tile, (rows + transpose_tile - 1) / transpose_tile);

    ASSERT_CUDA_SUCCESS(cuda::launch(tiled_transpose, grid, dim3(transpose_tile, transpose_tile), 0, nullptr, rows,
                                     columns, device_input.get(), device_output.get()));

    const std::vector<float> output = device_output.download();
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < columns; ++c) ASSERT_EQ(input[r * columns + c], output[c * rows + r]) << r << "," << c;
}

constexpr unsigned reverse_threads = 64;

// Reverses each block's slice through shared memory. Without the barrier a
// thread may read its mirror's slot before the mirror has written it.
template <bool synchronised>
__global__ void reverse_block(const int* input, int* output) {
    LADON_SHARED(int, staged, [reverse_threads]);
    const unsigned t = threadIdx.x, offset = blockIdx.x * blockDim.x;
    staged[t] = input[offset + t];
    if (synchronised) __syncthreads();
    output[offset + t] = staged[blockDim.x - 1 - t];
}

std::vector<int> run_reverse(void (*kernel)(const int*, int*), const std::vector<int>& input) {
    DeviceBuffer<int> device_input(input), device_output(input.size());
    EXPECT_CUDA_SUCCESS(cuda::launch(kernel, dim3(static_cast<unsigned>(input.size() / reverse_threads)),
                                     dim3(reverse_threads), 0, nullptr, device_input.get(), device_output.get()));
    return device_output.download();
}

TEST(EmuBarrier, MissingBarrierGivesWrongResultInEveryFiberOrder) {
    std::vector<int> input(3 * reverse_threads), expected(input.size());
    std::iota(input.begin(), input.end(), 0);
    for (std::size_t i = 0; i < input.size(); ++i)
        expected[i] = input[i - i % reverse_threads + reverse_threads - 1 - i % reverse_threads];

    for (const emu::FiberOrder order : both_fiber_orders) {
        const ScopedFiberOrder scoped(order);
        EXPECT_EQ(expected, run_reverse(reverse_block<true>, input)) << order_name(order);
        EXPECT_NE(expected, run_reverse(reverse_block<false>, input)) << order_name(order);
    }
}

__global__ void fill_with_thread_index(int* output) { output[threadIdx.x] = static_cast<int>(threadIdx.x); }

// Threads 16..31 return before the barrier the others wait at.
__global__ void barrier_in_divergent_code(int* output) {
    if (threadIdx.x < 16) {
        __syncthreads();
        output[threadIdx.x] = 1;
    }
}

TEST(EmuBarrier, BarrierReachedByPartOfTheBlockIsReportedNotHung) {
    DeviceBuffer<int> output(32);

    const cudaError_t result = cuda::launch(barrier_in_divergent_code, dim3(2), dim3(32), 0, nullptr, output.get());

    expect_kernel_fault(result, {"barrier_in_divergent_code", "__syncthreads() number 1", "reached by 16 of 32 threads",
                                 "thread (16,0,0) exited"});
    // Unlike on a GPU the fault does not poison the process: the next launch runs.
    EXPECT_CUDA_SUCCESS(cuda::launch(fill_with_thread_index, dim3(1), dim3(32), 0, nullptr, output.get()));
    EXPECT_EQ(31, output.download()[31]);
}

// The fault names the barrier by its count within the block: here the second.
__global__ void early_exit_after_first_barrier(int* output) {
    __syncthreads();
    if (threadIdx.y == 1) return;
    __syncthreads();
    output[threadIdx.x] = 1;
}

TEST(EmuBarrier, EarlyReturnBeforeSecondBarrierNamesBlockThreadAndBarrier) {
    DeviceBuffer<int> output(8);

    const cudaError_t result =
        cuda::launch(early_exit_after_first_barrier, dim3(1, 3), dim3(8, 2), 0, nullptr, output.get());

    expect_kernel_fault(
        result, {"kernel ladon::emu_test::(anonymous namespace)::early_exit_after_first_barrier(int*)", "block (0,",
                 "__syncthreads() number 2", "reached by 8 of 16 threads", "thread (0,1,0) exited"});
}

// __syncthreads_count/and/or reduce a predicate over the block.
__global__ void barrier_reductions(int* counts) {
    const int odd = threadIdx.x % 2;
    counts[0] = __syncthreads_count(odd);
    counts[1] = __syncthreads_and(threadIdx.x < 1000);
    counts[2] = __syncthreads_and(odd);
    counts[3] = __syncthreads_or(threadIdx.x == 77);
    counts[4] = __syncthreads_or(threadIdx.x > 1000);
}

TEST(EmuBarrier, SyncthreadsCountAndOrReduceThePredicate) {
    DeviceBuffer<int> counts(5);

    ASSERT_CUDA_SUCCESS(cuda::launch(barrier_reductions, dim3(1), dim3(100), 0, nullptr, counts.get()));

    EXPECT_EQ((std::vector<int>{50, 1, 0, 1, 0}), counts.download());
}

}  // namespace
}  // namespace ladon::emu_test
