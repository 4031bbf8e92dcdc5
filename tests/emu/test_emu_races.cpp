// The race-checking emulator (test_emu_tsan, kernels/emu/tsan.hpp): a kernel
// with a planted race of each kind is a ThreadSanitizer report naming both
// source lines, and the same kernel with its barrier, __syncwarp, atomic or
// fence in place runs clean. Built only where ThreadSanitizer's fiber API is
// (CI's main build); TSAN_OPTIONS=halt_on_error=1 turns a report into a death.
#include "emu/emu_test_support.hpp"
#include "kernels/cuda/tensor_core.cuh"

namespace ladon::emu_test {
namespace {

constexpr unsigned threads = 64;

// Each thread writes its slot of a tile and reads its neighbour's: a race
// unless a barrier stands between the write and the read.
template <bool barrier>
__global__ void neighbour_exchange(float* output) {
    LADON_SHARED(float, tile, [threads]);
    tile[threadIdx.x] = float(threadIdx.x);
    if constexpr (barrier) __syncthreads();
    output[threadIdx.x] = tile[(threadIdx.x + 1) % threads];
}

// Every thread increments one shared counter: a plain read-modify-write
// races; atomicAdd does not.
template <bool atomic>
__global__ void shared_counter(int* output) {
    LADON_SHARED(int, counter, );
    if (threadIdx.x == 0) counter = 0;
    __syncthreads();
    if constexpr (atomic)
        atomicAdd(&counter, 1);
    else
        counter += 1;
    __syncthreads();
    if (threadIdx.x == 0) output[0] = counter;
}

// Lanes exchange through shared memory within one warp: without __syncwarp
// between the write and the read, warp-synchronous code races.
template <bool sync>
__global__ void warp_exchange(float* output) {
    LADON_SHARED(float, lanes, [32]);
    lanes[threadIdx.x] = float(threadIdx.x);
    if constexpr (sync) __syncwarp();
    output[threadIdx.x] = lanes[threadIdx.x ^ 1];
}

// Thread 0 of every block writes the same word (the blocks run on two workers).
__global__ void every_block_writes_one_word(int* output) {
    if (threadIdx.x == 0) output[0] = int(blockIdx.x);
}

// Each block writes its partial, then counts itself in; the last block reads
// every partial. Without the fence between the write and the count, the last
// block's reads race with the others' writes.
template <bool fence>
__global__ void last_block_sums(float* partials, unsigned* arrivals, float* total) {
    LADON_SHARED(bool, is_last, );
    if (threadIdx.x == 0) {
        partials[blockIdx.x] = float(blockIdx.x + 1);
        if constexpr (fence) __threadfence();
        is_last = atomicInc(arrivals, gridDim.x - 1) == gridDim.x - 1;
    }
    __syncthreads();
    if (is_last && threadIdx.x == 0) {
        float sum = 0.0f;
        for (unsigned b = 0; b < gridDim.x; ++b) sum += partials[b];
        total[0] = sum;
    }
}

// Each thread copies its 16 bytes of a tile with cp.async and, after a
// barrier, reads its neighbour's: a race with the neighbour's copy (written
// at its wait_group) unless every wait comes before the barrier.
template <bool wait_before_barrier>
__global__ void async_neighbour_read(const float* input, float* output) {
    LADON_SHARED(uint4, tile, [32]);
    cuda::tensor_core::cp_async<16>(&tile[threadIdx.x], input + 4 * threadIdx.x);
    cuda::tensor_core::cp_async_commit();
    if constexpr (wait_before_barrier) cuda::tensor_core::cp_async_wait<0>();
    __syncthreads();
    const float value = reinterpret_cast<const float*>(tile)[(4 * threadIdx.x + 4) % 128];
    if constexpr (!wait_before_barrier) cuda::tensor_core::cp_async_wait<0>();
    output[threadIdx.x] = value;
}

class EmuRaces : public ::testing::Test {
protected:
    void SetUp() override {
#if defined(LADON_EMU_TSAN)
        // Re-run the test binary for the death test: workers are threads,
        // and fork() keeps only the calling one.
        GTEST_FLAG_SET(death_test_style, "threadsafe");
#else
        GTEST_SKIP() << "needs the race-checking build (test_emu_tsan)";
#endif
    }
};

TEST_F(EmuRaces, AMissingBarrierIsADataRace) {
    DeviceBuffer<float> output(threads);
    EXPECT_DEATH(cuda::launch(neighbour_exchange<false>, dim3(1), dim3(threads), 0, nullptr, output.get()),
                 "data race.*\\n(.*\\n)*.*neighbour_exchange");
    ASSERT_EQ(cudaSuccess, cuda::launch(neighbour_exchange<true>, dim3(1), dim3(threads), 0, nullptr, output.get()));
    EXPECT_EQ(output.download()[threads - 1], 0.0f);
}

TEST_F(EmuRaces, ANonAtomicReadModifyWriteIsADataRace) {
    DeviceBuffer<int> output(1);
    EXPECT_DEATH(cuda::launch(shared_counter<false>, dim3(1), dim3(threads), 0, nullptr, output.get()),
                 "data race.*\\n(.*\\n)*.*shared_counter");
    ASSERT_EQ(cudaSuccess, cuda::launch(shared_counter<true>, dim3(1), dim3(threads), 0, nullptr, output.get()));
    EXPECT_EQ(output.download()[0], int(threads));
}

TEST_F(EmuRaces, WarpCodeWithoutSyncwarpIsADataRace) {
    DeviceBuffer<float> output(32);
    EXPECT_DEATH(cuda::launch(warp_exchange<false>, dim3(1), dim3(32), 0, nullptr, output.get()),
                 "data race.*\\n(.*\\n)*.*warp_exchange");
    ASSERT_EQ(cudaSuccess, cuda::launch(warp_exchange<true>, dim3(1), dim3(32), 0, nullptr, output.get()));
    EXPECT_EQ(output.download()[0], 1.0f);
}

TEST_F(EmuRaces, TwoBlocksWritingOneGlobalWordIsADataRace) {
    DeviceBuffer<int> output(1);
    EXPECT_DEATH(cuda::launch(every_block_writes_one_word, dim3(64), dim3(32), 0, nullptr, output.get()),
                 "data race.*\\n(.*\\n)*.*every_block_writes_one_word");
}

TEST_F(EmuRaces, AMissingFenceBetweenBlocksIsADataRace) {
    constexpr unsigned blocks = 16;
    DeviceBuffer<float> partials(blocks), total(1);
    DeviceBuffer<unsigned> arrivals(std::vector<unsigned>{0u});
    EXPECT_DEATH(cuda::launch(last_block_sums<false>, dim3(blocks), dim3(32), 0, nullptr, partials.get(),
                              arrivals.get(), total.get()),
                 "data race.*\\n(.*\\n)*.*last_block_sums");
    ASSERT_EQ(cudaSuccess, cuda::launch(last_block_sums<true>, dim3(blocks), dim3(32), 0, nullptr, partials.get(),
                                        arrivals.get(), total.get()));
    EXPECT_EQ(total.download()[0], float(blocks * (blocks + 1) / 2));
}

TEST_F(EmuRaces, ReadingACpAsyncTileBeforeItsWaitIsADataRace) {
    std::vector<float> input(128);
    for (std::size_t i = 0; i < input.size(); ++i) input[i] = float(i);
    DeviceBuffer<float> device_input(input), output(32);
    EXPECT_DEATH(cuda::launch(async_neighbour_read<false>, dim3(1), dim3(32), 0, nullptr, device_input.get(),
                              output.get()),
                 "data race.*\\n(.*\\n)*.*async_neighbour_read");
    ASSERT_EQ(cudaSuccess, cuda::launch(async_neighbour_read<true>, dim3(1), dim3(32), 0, nullptr,
                                        device_input.get(), output.get()));
    EXPECT_EQ(output.download()[31], 0.0f);
    EXPECT_EQ(output.download()[0], 4.0f);
}

}  // namespace
}  // namespace ladon::emu_test
