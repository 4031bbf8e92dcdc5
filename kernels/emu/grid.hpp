#pragma once
// Running a grid: what ladon::cuda::launch hands the emulator, and the
// emulator's settings.
//
// Blocks are spread over a pool of worker threads (LADON_EMU_WORKERS, default
// 2); each worker runs one block at a time, its threads as fibers. Setting
// LADON_EMU_REVERSE=1 runs fibers, and takes blocks, in reverse order: code
// that is correct for the GPU gives the same result both ways.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "kernels/emu/runtime.hpp"

namespace ladon::emu {

struct GridLaunch {
    const void* kernel;  // the __global__ function: names it in messages, keys its attributes
    dim3 grid;
    dim3 block;
    std::size_t shared_bytes;  // dynamic shared memory per block
    cudaStream_t stream;
    // Runs the kernel once for the calling emulated thread.
    void (*run_thread)(const void* arguments);
    const void* arguments;
};

// Runs every block of the grid and returns when all have finished. Returns
// cudaErrorInvalidConfiguration for a grid or block over CUDA's limits,
// cudaErrorInvalidValue for too much dynamic shared memory, and
// cudaErrorLaunchFailure for a fault inside the kernel (the first one; the
// remaining blocks are skipped). Errors are recorded as by any runtime call.
cudaError_t launch_grid(const GridLaunch& launch);
// The checks launch_grid makes before running anything, for a launch queued
// to run later: the same errors, recorded the same way.
cudaError_t check_launch(const GridLaunch& launch);

enum class FiberOrder { forward, reverse };

// A kernel's shared memory per block, as its launches have used it: static
// (every LADON_SHARED array its blocks reached, summed) and dynamic (the last
// launch's), and how many blocks of it fit an SM of compute capability 9.0
// (228 KiB each, 1 KiB reserved per block, at most 32 blocks) on shared
// memory alone.
struct SharedMemoryUse {
    std::size_t static_bytes = 0;
    std::size_t dynamic_bytes = 0;
    int blocks_per_sm = 0;
};
// Empty if the kernel has not been launched.
std::optional<SharedMemoryUse> shared_memory_use(const void* kernel);
template <typename... Parameters>
std::optional<SharedMemoryUse> shared_memory_use(void (*kernel)(Parameters...)) {
    return shared_memory_use(reinterpret_cast<const void*>(kernel));
}

// Settings apply to the next launch; they start from the environment.
// With LADON_EMU_PLAIN_STATIC_SHARED the worker count is always 1.
void set_worker_count(int workers);
int worker_count();
void set_fiber_order(FiberOrder order);
FiberOrder fiber_order();

}  // namespace ladon::emu

namespace ladon::emu::detail {

// CUDA's limits for compute capability 9.0.
constexpr unsigned max_threads_per_block = 1024;
constexpr std::size_t default_max_dynamic_shared_bytes = 48 * 1024;
constexpr std::size_t max_dynamic_shared_bytes_optin = 227 * 1024;
constexpr std::size_t max_static_shared_bytes = 48 * 1024;
constexpr std::size_t shared_bytes_per_sm = 228 * 1024;
constexpr std::size_t shared_reserved_per_block = 1024;
constexpr std::size_t max_blocks_per_sm = 32;

// At a block's end (shared_memory.cpp): its shared memory counts towards the
// kernel's SharedMemoryUse.
void record_shared_use(const void* kernel, std::size_t dynamic_bytes);

}  // namespace ladon::emu::detail
