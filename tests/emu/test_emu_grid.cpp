// Grids and blocks in one, two and three dimensions: every thread of every
// block runs once with its own indices, however many blocks and workers.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "emu/emu_test_support.hpp"

namespace ladon::emu_test {
namespace {

// Each thread writes its global linear index at that index, and counts
// itself: a thread run twice or never shows in one of the two.
__global__ void write_global_index(std::uint32_t* indices, int* visits) {
    const std::uint64_t block = (std::uint64_t{blockIdx.z} * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const std::uint64_t thread = (std::uint64_t{threadIdx.z} * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    const std::uint64_t global = block * (blockDim.x * blockDim.y * blockDim.z) + thread;
    indices[global] = static_cast<std::uint32_t>(global);
    atomicAdd(&visits[global], 1);
}

void expect_every_thread_once(dim3 grid, dim3 block) {
    const std::size_t count = std::size_t{grid.x} * grid.y * grid.z * block.x * block.y * block.z;
    DeviceBuffer<std::uint32_t> indices(count);
    DeviceBuffer<int> visits(count);
    visits.zero();

    ASSERT_CUDA_SUCCESS(cuda::launch(write_global_index, grid, block, 0, nullptr, indices.get(), visits.get()));

    const std::vector<std::uint32_t> written = indices.download();
    const std::vector<int> counted = visits.download();
    for (std::size_t i = 0; i < count; ++i) {
        ASSERT_EQ(i, written[i]) << "element " << i;
        ASSERT_EQ(1, counted[i]) << "element " << i;
    }
}

TEST(EmuGrid, ThousandBlocksOf3dGridAnd3dBlockRunEveryThreadOnce) {
    expect_every_thread_once(dim3(10, 10, 10), dim3(4, 2, 3));
}

TEST(EmuGrid, TwoDimensionalGridsAndOneThreadBlocksRunEveryThreadOnce) {
    expect_every_thread_once(dim3(7, 13), dim3(16, 3));
    expect_every_thread_once(dim3(3, 1, 5), dim3(1));
    expect_every_thread_once(dim3(1), dim3(1024));
}

__global__ void scale(float factor, float* values) { values[threadIdx.x] *= factor; }

TEST(EmuGrid, WorkerCountCanChangeBetweenLaunches) {
    const int workers = emu::worker_count();
    DeviceBuffer<float> values(std::vector<float>(32, 1.0f));
    for (const int count : {1, 3, workers}) {
        emu::set_worker_count(count);
        ASSERT_CUDA_SUCCESS(cuda::launch(scale, dim3(1), dim3(32), 0, nullptr, 2.0f, values.get()));
    }
    EXPECT_EQ(workers, emu::worker_count());
    EXPECT_EQ(8.0f, values.download()[31]);
}

// Each thread takes a ticket on arrival: the order fibers first ran in.
__global__ void take_arrival_ticket(unsigned* counter, unsigned* tickets) {
    tickets[threadIdx.x] = atomicAdd(counter, 1u);
}

TEST(EmuGrid, FiberOrderDecidesWhichThreadRunsFirst) {
    for (const emu::FiberOrder order : both_fiber_orders) {
        const ScopedFiberOrder scoped(order);
        DeviceBuffer<unsigned> counter(1), tickets(64);
        counter.zero();
        ASSERT_CUDA_SUCCESS(
            cuda::launch(take_arrival_ticket, dim3(1), dim3(64), 0, nullptr, counter.get(), tickets.get()));
        const std::vector<unsigned> arrival = tickets.download();
        EXPECT_EQ(order == emu::FiberOrder::forward ? 0u : 63u, arrival[0]) << order_name(order);
        EXPECT_EQ(order == emu::FiberOrder::forward ? 63u : 0u, arrival[63]) << order_name(order);
    }
}

TEST(EmuGrid, SettingsStartFromTheEnvironment) {
    const char* reverse = std::getenv("LADON_EMU_REVERSE");
    const bool expect_reverse = reverse != nullptr && std::string(reverse) == "1";
    EXPECT_EQ(expect_reverse ? emu::FiberOrder::reverse : emu::FiberOrder::forward, emu::fiber_order());
#if defined(LADON_EMU_PLAIN_STATIC_SHARED)
    EXPECT_EQ(1, emu::worker_count());  // static shared arrays are shared by all workers
#else
    const char* workers = std::getenv("LADON_EMU_WORKERS");
    EXPECT_EQ(workers != nullptr ? std::atoi(workers) : 2, emu::worker_count());
#endif
}

// The kernel arguments are converted to the parameter types, as <<< >>> does.
__global__ void store_converted(std::int64_t wide, float narrow, std::int64_t* output, float* float_output) {
    *output = wide;
    *float_output = narrow;
}

TEST(EmuGrid, LaunchConvertsArgumentsToParameterTypes) {
    DeviceBuffer<std::int64_t> output(1);
    DeviceBuffer<float> float_output(1);

    ASSERT_CUDA_SUCCESS(
        cuda::launch(store_converted, dim3(1), dim3(1), 0, nullptr, 7, 2.5, output.get(), float_output.get()));

    EXPECT_EQ(7, output.download()[0]);
    EXPECT_EQ(2.5f, float_output.download()[0]);
}

}  // namespace
}  // namespace ladon::emu_test
