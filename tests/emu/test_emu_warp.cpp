// Warp intrinsics: the lanes of a warp are the threads whose linear index / 32
// is equal; a shuffle or vote is a rendezvous of the lanes in its mask.
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "emu/emu_test_support.hpp"

namespace ladon::emu_test {
namespace {

constexpr unsigned full_mask = 0xffffffffu;

// Every lane ends with the warp's total: five xor exchanges, halving distance.
__global__ void xor_butterfly_sum(const float* input, float* output) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    float value = input[i];
    for (int distance = 16; distance > 0; distance /= 2) value += __shfl_xor_sync(full_mask, value, distance);
    output[i] = value;
}

TEST(EmuWarp, XorButterflyGivesEveryLaneTheWarpTotal) {
    std::vector<float> input(2 * 64);
    std::iota(input.begin(), input.end(), 0.0f);
    DeviceBuffer<float> device_input(input), device_output(input.size());

    ASSERT_CUDA_SUCCESS(
        cuda::launch(xor_butterfly_sum, dim3(2), dim3(64), 0, nullptr, device_input.get(), device_output.get()));

    const std::vector<float> output = device_output.download();
    for (std::size_t i = 0; i < output.size(); ++i) {
        const float first = static_cast<float>(i - i % 32);
        ASSERT_EQ(32 * first + 31 * 32 / 2, output[i]) << "thread " << i;
    }
}

// Lane 0 ends with the warp's total; a shift past lane 31 reads the own value.
__global__ void shuffle_down_sum(const int* input, int* output) {
    int value = input[threadIdx.x];
    for (unsigned delta = 16; delta > 0; delta /= 2) value += __shfl_down_sync(full_mask, value, delta);
    output[threadIdx.x] = value;
}

TEST(EmuWarp, ShuffleDownReducesIntoLaneZero) {
    std::vector<int> input(32);
    std::iota(input.begin(), input.end(), 1);
    DeviceBuffer<int> device_input(input), device_output(32);

    ASSERT_CUDA_SUCCESS(
        cuda::launch(shuffle_down_sum, dim3(1), dim3(32), 0, nullptr, device_input.get(), device_output.get()));

    const std::vector<int> output = device_output.download();
    EXPECT_EQ(32 * 33 / 2, output[0]);
    EXPECT_EQ(32 << 5, output[31]);  // past the last lane it reads itself: 32 doubled five times
}

// Inclusive prefix sum over each 8-lane segment (width 8): a shift before the
// segment's start reads the own value, which the lane then ignores.
__global__ void segmented_prefix_sum(const unsigned* input, unsigned* output) {
    unsigned value = input[threadIdx.x];
    const unsigned lane_in_segment = threadIdx.x % 8;
    for (unsigned delta = 1; delta < 8; delta *= 2) {
        const unsigned before = __shfl_up_sync(full_mask, value, delta, 8);
        if (lane_in_segment >= delta) value += before;
    }
    output[threadIdx.x] = value;
}

TEST(EmuWarp, ShuffleUpComputesPrefixSumsWithinSegments) {
    std::vector<unsigned> input(32);
    std::iota(input.begin(), input.end(), 1u);
    DeviceBuffer<unsigned> device_input(input), device_output(32);

    ASSERT_CUDA_SUCCESS(
        cuda::launch(segmented_prefix_sum, dim3(1), dim3(32), 0, nullptr, device_input.get(), device_output.get()));

    const std::vector<unsigned> output = device_output.download();
    for (unsigned lane = 0; lane < 32; ++lane) {
        unsigned expected = 0;
        for (unsigned j = lane - lane % 8; j <= lane; ++j) expected += input[j];
        EXPECT_EQ(expected, output[lane]) << "lane " << lane;
    }
}

// Broadcast: every lane reads lane 5 of the warp, then lane 3 of its 16-lane
// half (width 16), in double to move 8-byte values.
__global__ void broadcast(double* output) {
    const double mine = 100.0 * blockIdx.x + threadIdx.x;
    output[2 * threadIdx.x] = __shfl_sync(full_mask, mine, 5);
    output[2 * threadIdx.x + 1] = __shfl_sync(full_mask, mine, 3 + 32 /* wraps */, 16);
}

TEST(EmuWarp, ShuffleBroadcastsFromTheSourceLane) {
    DeviceBuffer<double> output(2 * 32);

    ASSERT_CUDA_SUCCESS(cuda::launch(broadcast, dim3(1), dim3(32), 0, nullptr, output.get()));

    const std::vector<double> values = output.download();
    for (unsigned lane = 0; lane < 32; ++lane) {
        EXPECT_EQ(5.0, values[2 * lane]) << lane;
        EXPECT_EQ(lane < 16 ? 3.0 : 19.0, values[2 * lane + 1]) << lane;
    }
}

// Only the first 16 lanes take part (mask 0xffff); the rest never call it.
__global__ void half_warp_sum(int* output) {
    if (threadIdx.x >= 16) {
        output[threadIdx.x] = -1;
        return;
    }
    int value = static_cast<int>(threadIdx.x);
    for (int distance = 8; distance > 0; distance /= 2) value += __shfl_xor_sync(0xffffu, value, distance);
    output[threadIdx.x] = value;
}

TEST(EmuWarp, PartialMaskShufflesAmongTheNamedLanesOnly) {
    DeviceBuffer<int> output(32);

    ASSERT_CUDA_SUCCESS(cuda::launch(half_warp_sum, dim3(1), dim3(32), 0, nullptr, output.get()));

    const std::vector<int> values = output.download();
    for (int lane = 0; lane < 32; ++lane) EXPECT_EQ(lane < 16 ? 120 : -1, values[lane]) << lane;
}

// Lane 15 reads lane 16, which is outside the mask: undefined on a GPU,
// poison (NaN) here, so using it shows.
__global__ void shuffle_from_outside_mask(float* output) {
    if (threadIdx.x < 16) output[threadIdx.x] = __shfl_down_sync(0xffffu, 1.0f * threadIdx.x, 1);
}

TEST(EmuWarp, ReadingALaneOutsideTheMaskGivesPoison) {
    DeviceBuffer<float> output(16);

    ASSERT_CUDA_SUCCESS(cuda::launch(shuffle_from_outside_mask, dim3(1), dim3(32), 0, nullptr, output.get()));

    const std::vector<float> values = output.download();
    EXPECT_EQ(1.0f, values[0]);
    EXPECT_EQ(14.0f, values[13]);
    EXPECT_TRUE(std::isnan(values[15]));
}

// Votes over a 2D block of 64 threads = 2 warps, numbered by linear index.
__global__ void votes(unsigned* output) {
    const unsigned linear = threadIdx.y * blockDim.x + threadIdx.x, warp = linear / 32;
    const int predicate = linear % 3 == 0;
    const unsigned ballot = __ballot_sync(full_mask, predicate);
    const int any = __any_sync(full_mask, linear == 40);
    const int all = __all_sync(full_mask, linear < 32);
    if (linear % 32 == 0) {
        output[3 * warp] = ballot;
        output[3 * warp + 1] = static_cast<unsigned>(any);
        output[3 * warp + 2] = static_cast<unsigned>(all);
    }
}

TEST(EmuWarp, BallotAnyAndAllVotePerWarp) {
    DeviceBuffer<unsigned> output(6);

    ASSERT_CUDA_SUCCESS(cuda::launch(votes, dim3(1), dim3(8, 8), 0, nullptr, output.get()));

    unsigned first_ballot = 0, second_ballot = 0;
    for (unsigned lane = 0; lane < 32; ++lane) {
        if (lane % 3 == 0) first_ballot |= 1u << lane;
        if ((lane + 32) % 3 == 0) second_ballot |= 1u << lane;
    }
    EXPECT_EQ((std::vector<unsigned>{first_ballot, 0, 1, second_ballot, 1, 0}), output.download());
}

constexpr unsigned exchange_lanes = 32;

// Warp-synchronous exchange through shared memory: correct only with the
// __syncwarp between the write and the read.
template <bool synchronised>
__global__ void warp_reverse(int* output) {
    LADON_SHARED(int, staged, [exchange_lanes]);
    staged[threadIdx.x] = static_cast<int>(threadIdx.x);
    if (synchronised) __syncwarp();
    output[threadIdx.x] = staged[exchange_lanes - 1 - threadIdx.x];
}

TEST(EmuWarp, WarpSynchronousCodeNeedsSyncwarp) {
    std::vector<int> expected(exchange_lanes);
    for (unsigned lane = 0; lane < exchange_lanes; ++lane) expected[lane] = static_cast<int>(exchange_lanes - 1 - lane);
    for (const emu::FiberOrder order : both_fiber_orders) {
        const ScopedFiberOrder scoped(order);
        DeviceBuffer<int> with(exchange_lanes), without(exchange_lanes);
        ASSERT_CUDA_SUCCESS(cuda::launch(warp_reverse<true>, dim3(1), dim3(exchange_lanes), 0, nullptr, with.get()));
        ASSERT_CUDA_SUCCESS(
            cuda::launch(warp_reverse<false>, dim3(1), dim3(exchange_lanes), 0, nullptr, without.get()));
        EXPECT_EQ(expected, with.download()) << order_name(order);
        EXPECT_NE(expected, without.download()) << order_name(order);
    }
}

// Lane 31 returns early; the others wait for it in a full-mask shuffle.
__global__ void lane_exits_before_shuffle(int* output) {
    if (threadIdx.x == 31) return;
    output[threadIdx.x] = __shfl_xor_sync(full_mask, static_cast<int>(threadIdx.x), 1);
}

TEST(EmuWarp, LaneThatExitsBeforeAShuffleIsReported) {
    DeviceBuffer<int> output(32);

    const cudaError_t result = cuda::launch(lane_exits_before_shuffle, dim3(1), dim3(32), 0, nullptr, output.get());

    expect_kernel_fault(result,
                        {"lane_exits_before_shuffle", "thread (0,0,0): waits in __shfl_xor_sync(mask 0xffffffff)",
                         "lane 31 (thread (31,0,0)) has exited"});
}

// Lanes of one warp in different intrinsics with the same mask.
__global__ void mismatched_intrinsics(int* output) {
    if (threadIdx.x < 8)
        output[threadIdx.x] = static_cast<int>(__ballot_sync(full_mask, 1));
    else
        output[threadIdx.x] = __shfl_sync(full_mask, 7, 0);
}

TEST(EmuWarp, LanesInDifferentIntrinsicsAreReported) {
    DeviceBuffer<int> output(32);

    const cudaError_t result = cuda::launch(mismatched_intrinsics, dim3(1), dim3(32), 0, nullptr, output.get());

    expect_kernel_fault(result, {"waits in __ballot_sync(mask 0xffffffff)", "is in __shfl_sync(mask 0xffffffff)"});
}

// A mask must name the calling lane, and only lanes that exist: this block
// has 48 threads, so its second warp has 16 lanes.
__global__ void shuffle_with_mask(unsigned mask, unsigned callers, int* output) {
    if (threadIdx.x < callers) output[threadIdx.x] = __shfl_sync(mask, 1, 0);
}

TEST(EmuWarp, MaskWithoutTheCallerOrWithMissingLanesIsReported) {
    DeviceBuffer<int> output(48);

    expect_kernel_fault(cuda::launch(shuffle_with_mask, dim3(1), dim3(32), 0, nullptr, 0x0000fffeu, 16u, output.get()),
                        {"thread (0,0,0): __shfl_sync(mask 0x0000fffe): the calling lane 0 is not in the mask"});
    expect_kernel_fault(cuda::launch(shuffle_with_mask, dim3(1), dim3(48), 0, nullptr, full_mask, 48u, output.get()),
                        {"names lane 16, but this warp has only 16 threads (the block has 48)"});
}

}  // namespace
}  // namespace ladon::emu_test
