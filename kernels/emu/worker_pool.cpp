#include "kernels/emu/worker_pool.hpp"

#include <cstring>
#include <exception>
#include <memory>

#include "kernels/emu/block.hpp"
#include "kernels/emu/tsan.hpp"

namespace ladon::emu::detail {

WorkerPool::WorkerPool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { worker_main(); });
}

WorkerPool::~WorkerPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    work_ready_.notify_all();
    for (std::thread& thread : threads_) thread.join();
}

std::optional<std::string> WorkerPool::run(const GridLaunch& launch, FiberOrder order,
                                           std::size_t opted_in_dynamic_shared) {
    std::unique_lock lock(mutex_);
    launch_ = &launch;
    order_ = order;
    opted_in_dynamic_shared_ = opted_in_dynamic_shared;
    block_count_ = std::uint64_t{launch.grid.x} * launch.grid.y * launch.grid.z;
    next_block_ = 0;
    failed_ = false;
    fault_.reset();
    busy_workers_ = size();
    ++generation_;
    work_ready_.notify_all();
    work_done_.wait(lock, [this] { return busy_workers_ == 0; });
    launch_ = nullptr;
    return std::move(fault_);
}

void WorkerPool::worker_main() {
    const tsan::Unchecked unchecked;  // the scheduler's own accesses are the emulator's, not a kernel's
    BlockRunner runner;               // owns this worker's fiber stacks
    std::uint64_t seen_generation = 0;
    std::unique_lock lock(mutex_);
    for (;;) {
        work_ready_.wait(lock, [&] { return stopping_ || generation_ != seen_generation; });
        if (stopping_) return;
        seen_generation = generation_;
        lock.unlock();
        run_blocks(runner);
        lock.lock();
        if (--busy_workers_ == 0) work_done_.notify_all();
    }
}

void WorkerPool::run_blocks(BlockRunner& runner) {
    const GridLaunch& launch = *launch_;
    // Exactly the bytes the launch asked for, so ASan reports an access past
    // them; 16-byte aligned like the GPU's (operator new's alignment).
    const auto shared = std::make_unique_for_overwrite<std::byte[]>(launch.shared_bytes);
    dynamic_shared_memory = shared.get();
    dynamic_shared_bytes = launch.shared_bytes;
    opted_in_dynamic_shared_bytes = opted_in_dynamic_shared_;
    const std::uint64_t grid_xy = std::uint64_t{launch.grid.x} * launch.grid.y;
    for (;;) {
        const std::uint64_t taken = next_block_++;
        if (taken >= block_count_ || failed_) break;
        const std::uint64_t block = order_ == FiberOrder::forward ? taken : block_count_ - 1 - taken;
        const uint3 block_index{static_cast<unsigned>(block % launch.grid.x),
                                static_cast<unsigned>(block / launch.grid.x % launch.grid.y),
                                static_cast<unsigned>(block / grid_xy)};
        std::unique_ptr<std::byte[]> fresh;  // the race-checking build: new memory has no other block's past
        if constexpr (tsan::enabled) {
            fresh = std::make_unique_for_overwrite<std::byte[]>(launch.shared_bytes);
            dynamic_shared_memory = fresh.get();
        }
        std::memset(dynamic_shared_memory, poison_byte, launch.shared_bytes);
        std::optional<std::string> fault;
        try {
            fault = runner.run(launch, block_index, order_);
        } catch (const std::exception& error) {  // no memory for fiber stacks
            fault = "block " + coordinates(block_index) + ": the emulator failed: " + error.what();
        }
        if (fault) {
            std::lock_guard lock(mutex_);
            if (!fault_) fault_ = std::move(fault);
            failed_ = true;
        }
    }
    dynamic_shared_memory = nullptr;
}

}  // namespace ladon::emu::detail
