#pragma once
// The worker threads that run a grid's blocks (internal to the emulator).
// Workers live as long as the pool, so their fiber stacks and thread-local
// shared arrays are set up once, not per launch. A launch hands every worker
// the grid; each takes the next block index from a shared counter until none
// is left, so blocks run in no fixed order across workers, as on a GPU.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kernels/emu/grid.hpp"

namespace ladon::emu::detail {

class BlockRunner;

class WorkerPool {
public:
    explicit WorkerPool(int workers);
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    int size() const { return static_cast<int>(threads_.size()); }

    // Runs every block of `launch`; returns the first fault ("block (..),
    // thread (..): ...") after which no further block is started.
    // `opted_in_dynamic_shared`: the kernel's cudaFuncAttributeMaxDynamicSharedMemorySize, 0 if unset.
    std::optional<std::string> run(const GridLaunch& launch, FiberOrder order, std::size_t opted_in_dynamic_shared);

private:
    void worker_main();
    void run_blocks(BlockRunner& runner);

    std::mutex mutex_;
    std::condition_variable work_ready_;
    std::condition_variable work_done_;
    std::uint64_t generation_ = 0;  // one per launch
    int busy_workers_ = 0;
    bool stopping_ = false;

    // The current launch, set under mutex_ before workers wake.
    const GridLaunch* launch_ = nullptr;
    FiberOrder order_ = FiberOrder::forward;
    std::size_t opted_in_dynamic_shared_ = 0;
    std::uint64_t block_count_ = 0;
    std::atomic<std::uint64_t> next_block_{0};
    std::atomic<bool> failed_{false};
    std::optional<std::string> fault_;  // guarded by mutex_

    std::vector<std::thread> threads_;
};

}  // namespace ladon::emu::detail
