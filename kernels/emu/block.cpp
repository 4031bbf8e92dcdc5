#include "kernels/emu/block.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <utility>
#include <vector>

#include "kernels/emu/shared_memory.hpp"
#include "kernels/emu/tsan.hpp"

namespace ladon::emu::detail {
namespace {

// The block the calling worker is running, for the sync points.
thread_local BlockRunner* current_runner = nullptr;

std::atomic<std::uint64_t> block_serials{0};

BlockRunner& runner_for(const char* intrinsic) {
    if (current_runner == nullptr) {
        std::fprintf(stderr, "ladon emulator: %s called outside a kernel\n", intrinsic);
        std::abort();
    }
    return *current_runner;
}

}  // namespace

bool inside_kernel() { return current_runner != nullptr; }

BlockRunner& running_block(const char* what) { return runner_for(what); }

void* block_shared_array(const void* key, std::size_t bytes) {
    struct Arrays {
        std::uint64_t block = 0;
        std::vector<std::pair<const void*, std::unique_ptr<std::byte[]>>> arrays;
    };
    void* array = nullptr;
    {
        const tsan::Unchecked unchecked;  // allocating unchecked also makes ThreadSanitizer forget the memory's past
        static thread_local Arrays current;  // the worker's block
        if (current.block != block_serial) {
            current.arrays.clear();
            current.block = block_serial;
        }
        for (const auto& [array_key, memory] : current.arrays)
            if (array_key == key) return memory.get();
        auto memory = std::make_unique_for_overwrite<std::byte[]>(bytes);
        std::memset(memory.get(), poison_byte, bytes);
        array = current.arrays.emplace_back(key, std::move(memory)).second.get();
    }
    note_static_shared(array, bytes);  // may end the thread: outside the unchecked scope
    return array;
}

void tsan::mark_fence() {
    const Unchecked unchecked;
    runner_for("__threadfence()").running_thread().fenced = true;
}

bool tsan::take_fence() {
    const Unchecked unchecked;
    return std::exchange(runner_for("an atomic").running_thread().fenced, false);
}

void* tsan::launch_end_object() {
    static char object = 0;
    return &object;
}

std::string coordinates(uint3 index) {
    char text[40];
    std::snprintf(text, sizeof text, "(%u,%u,%u)", index.x, index.y, index.z);
    return text;
}

int block_barrier(BarrierReduction reduction, int predicate) {
    return runner_for("__syncthreads()").barrier(reduction, predicate);
}

std::uint64_t warp_collective(WarpOp op, unsigned mask, std::uint64_t value, int lane_argument, int width) {
    return runner_for("a warp intrinsic").warp_collective(op, mask, value, lane_argument, width);
}

void warp_aligned(const AlignedInstruction& instruction, const void* input, void* output) {
    runner_for(instruction.name).warp_aligned(instruction, input, output);
}

void report_fault(std::string message) {
    const tsan::Unchecked unchecked;
    runner_for("a checked primitive").report_fault(std::move(message));
}

void abandon_if_faulted() { runner_for("a checked primitive").abandon_if_faulted(); }

std::optional<std::string> BlockRunner::run(const GridLaunch& launch, uint3 block_index, FiberOrder order) {
    launch_ = &launch;
    block_index_ = block_index;
    waiting_at_barrier_ = 0;
    exited_ = 0;
    barriers_passed_ = 0;
    fault_.reset();

    blockIdx = block_index;
    blockDim = launch.block;
    gridDim = launch.grid;
    block_serial = ++block_serials;

    const std::size_t count = std::size_t{launch.block.x} * launch.block.y * launch.block.z;
    // Freed at the end of the block: ThreadSanitizer then forgets their history.
    if constexpr (tsan::enabled) sync_objects_ = std::make_unique<char[]>(kRing * (1 + count));
    threads_.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
        EmulatedThread& thread = threads_[i];
        Fiber fiber = std::move(thread.fiber);  // keeps its ThreadSanitizer context (fiber.cpp)
        thread = EmulatedThread{};
        thread.fiber = std::move(fiber);
        // x varies fastest, as CUDA numbers a block's threads (and so warps).
        thread.index = {static_cast<unsigned>(i % launch.block.x),
                        static_cast<unsigned>(i / launch.block.x % launch.block.y),
                        static_cast<unsigned>(i / (std::size_t{launch.block.x} * launch.block.y))};
        thread.fiber.start(stacks_.at(i), i, &BlockRunner::thread_main, this);
    }

    current_runner = this;
    while (!fault_) {
        resume_ready_threads(order);
        if (fault_ || exited_ == count) break;
        if (release_barrier() || release_warp_groups()) continue;
        fault_ = describe_deadlock();
    }
    current_runner = nullptr;
    finish_async_copies();
    record_shared_use(launch.kernel, launch.shared_bytes);
    sync_objects_.reset();
    return fault_;
}

void BlockRunner::resume_ready_threads(FiberOrder order) {
    const std::size_t count = threads_.size();
    for (std::size_t step = 0; step < count && !fault_; ++step) {
        const std::size_t i = order == FiberOrder::forward ? step : count - 1 - step;
        EmulatedThread& thread = threads_[i];
        if (thread.wait != ThreadWait::none) continue;
        running_ = i;
        threadIdx = thread.index;
        thread.fiber.resume();
    }
}

void BlockRunner::thread_main(void* runner) {
    auto* self = static_cast<BlockRunner*>(runner);
    // An exception must not unwind past the fiber's first frame.
    try {
        self->launch_->run_thread(self->launch_->arguments);
    } catch (const std::exception& error) {
        const tsan::Unchecked unchecked;
        self->fault_ = self->where(self->running_) + ": the kernel threw: " + error.what();
    } catch (...) {
        const tsan::Unchecked unchecked;
        self->fault_ = self->where(self->running_) + ": the kernel threw an exception";
    }
    tsan::release(tsan::launch_end_object());  // what the thread did, for the host after the launch
    const tsan::Unchecked unchecked;
    if (!self->fault_) self->check_copies_at_exit();
    self->threads_[self->running_].wait = ThreadWait::exited;
    ++self->exited_;
}

int BlockRunner::barrier(BarrierReduction reduction, int predicate) {
    const tsan::Unchecked unchecked;
    EmulatedThread& thread = threads_[running_];
    void* const generation = barrier_object(barriers_passed_);
    tsan::release(generation);
    thread.wait = ThreadWait::block_barrier;
    thread.reduction = reduction;
    thread.predicate = predicate;
    ++waiting_at_barrier_;
    thread.fiber.suspend();
    tsan::acquire(generation);  // every thread released it before any was resumed
    return thread.barrier_result;
}

// Exited threads never count as arrived: a barrier reached by only part of
// the block is a deadlock, however the GPU happens to treat it.
bool BlockRunner::release_barrier() {
    if (waiting_at_barrier_ != threads_.size()) return false;
    int true_count = 0;
    for (const EmulatedThread& thread : threads_) true_count += thread.predicate != 0;
    const int count = static_cast<int>(threads_.size());
    for (EmulatedThread& thread : threads_) {
        switch (thread.reduction) {
            case BarrierReduction::none:
                thread.barrier_result = 0;
                break;
            case BarrierReduction::count:
                thread.barrier_result = true_count;
                break;
            case BarrierReduction::all:
                thread.barrier_result = true_count == count;
                break;
            case BarrierReduction::any:
                thread.barrier_result = true_count > 0;
                break;
        }
        thread.wait = ThreadWait::none;
    }
    waiting_at_barrier_ = 0;
    ++barriers_passed_;
    return true;
}

std::string BlockRunner::describe_deadlock() const {
    if (auto warp = describe_warp_deadlock()) return *warp;
    // Only barrier waiters and exited threads remain.
    std::size_t waiting = threads_.size(), exited = threads_.size();
    for (std::size_t i = 0; i < threads_.size(); ++i) {
        if (threads_[i].wait == ThreadWait::block_barrier && waiting == threads_.size()) waiting = i;
        if (threads_[i].wait == ThreadWait::exited && exited == threads_.size()) exited = i;
    }
    return where(waiting) + ": __syncthreads() number " + std::to_string(barriers_passed_ + 1) +
           " of the block is reached by " + std::to_string(waiting_at_barrier_) + " of " +
           std::to_string(threads_.size()) + " threads; thread " + coordinates(threads_[exited].index) +
           " exited without reaching it (a barrier in divergent code or after an early return: deadlock)";
}

void BlockRunner::abandon_running_thread() {
    threads_[running_].fiber.suspend();
    std::fputs("ladon emulator: a faulted fiber was resumed\n", stderr);
    std::abort();
}

std::string BlockRunner::where(std::size_t thread) const {
    return "block " + coordinates(block_index_) + ", thread " + coordinates(threads_[thread].index);
}

}  // namespace ladon::emu::detail
