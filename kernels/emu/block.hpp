#pragma once
// The scheduler of one thread block (internal to the emulator).
//
// Each emulated thread is a fiber. The scheduler resumes every ready fiber in
// turn (forward or reverse order); a fiber runs until it waits at a sync point
// (sync.hpp) or returns. When every fiber waits or has returned, the
// scheduler releases what can be released:
// - __syncthreads(): when every thread of the block waits at it;
// - a warp intrinsic: when every lane named in the mask waits in the same
//   intrinsic with the same mask and width (warp.cpp computes the results);
// and resumes the released fibers. If nothing can be released the block is
// deadlocked: on a GPU it would hang or compute garbage. The scheduler stops
// and describes it (which barrier, which thread waits, which one exited or
// waits elsewhere), and the launch reports cudaErrorLaunchFailure.
#include <array>
#include <cstddef>
#include <memory>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kernels/emu/fiber.hpp"
#include "kernels/emu/grid.hpp"
#include "kernels/emu/sync.hpp"

namespace ladon::emu::detail {

enum class ThreadWait : std::uint8_t { none, block_barrier, warp, exited };

// A cp.async the thread has issued and not yet waited for (async_copy.cpp):
// its destination holds the poison pattern until the wait copies.
struct PendingCopy {
    std::byte* destination;
    const std::byte* source;
    std::uint8_t bytes;         // 4, 8 or 16
    std::uint8_t source_bytes;  // the rest is zero-filled
    std::uint32_t group;        // its commit group; uncommitted while `uncommitted`
    static constexpr std::uint32_t uncommitted = ~std::uint32_t{0};
};

struct EmulatedThread {
    uint3 index{0, 0, 0};
    ThreadWait wait = ThreadWait::none;
    // At a __syncthreads*(): its predicate, then the block's reduction.
    BarrierReduction reduction = BarrierReduction::none;
    int predicate = 0;
    int barrier_result = 0;
    // In a warp intrinsic: its arguments, then its result.
    WarpOp op = WarpOp::sync;
    unsigned mask = 0;
    int lane_argument = 0;
    int width = 0;
    std::uint64_t value = 0;
    std::uint64_t result = 0;
    // In an aligned warp instruction: which, and this lane's operands.
    const AlignedInstruction* instruction = nullptr;
    const void* aligned_input = nullptr;
    void* aligned_output = nullptr;
    // cp.async: copies not yet waited for, groups committed so far, and the
    // shared address and size of every copy issued (for the bank count).
    std::vector<PendingCopy> pending_copies;
    std::uint32_t committed_groups = 0;
    std::vector<std::pair<std::uintptr_t, std::uint8_t>> issued_copies;
    // The race-checking build (tsan.hpp): the warp intrinsics this thread
    // has entered, and at its last release each lane's count then.
    std::uint32_t warp_calls = 0;
    std::array<std::uint32_t, 32> group_calls{};
    bool fenced = false;  // a __threadfence() since its last atomic
    Fiber fiber;
};

// Whether the calling thread is running an emulated thread (a kernel).
bool inside_kernel();

class BlockRunner;
// The block the calling emulated thread belongs to; outside a kernel, a
// message naming `what` and abort.
BlockRunner& running_block(const char* what);

// "(x,y,z)", as messages write a block or thread index.
std::string coordinates(uint3 index);

class BlockRunner {
public:
    // Runs block `block_index` of `launch` to its end. Returns what went wrong,
    // as "block (x,y,z), thread (x,y,z): ...", if the block faulted.
    std::optional<std::string> run(const GridLaunch& launch, uint3 block_index, FiberOrder order);

    EmulatedThread& running_thread() { return threads_[running_]; }
    // Called by the running fiber (through block_barrier / warp_collective).
    int barrier(BarrierReduction reduction, int predicate);
    std::uint64_t warp_collective(WarpOp op, unsigned mask, std::uint64_t value, int lane_argument, int width);
    void warp_aligned(const AlignedInstruction& instruction, const void* input, void* output);
    void report_fault(std::string message) { fault_ = where(running_) + ": " + std::move(message); }
    void abandon_if_faulted() {
        if (fault_) abandon_running_thread();
    }
    // async_copy.cpp
    void async_copy(void* destination, const void* source, int bytes, int source_bytes);
    void commit_async_copies();
    void wait_async_copies(int newest_groups_left);

private:
    static void thread_main(void* runner);
    void resume_ready_threads(FiberOrder order);
    bool release_barrier();
    std::string describe_deadlock() const;
    // After a fault found inside the running fiber (fault_ set): back to the
    // scheduler for good, which abandons the block. The fiber's frames are
    // never unwound, so the caller must own no heap memory at this point.
    [[noreturn]] void abandon_running_thread();
    std::string where(std::size_t thread) const;
    // The race-checking build's sync objects (tsan.hpp), fresh for each
    // block: a ring per barrier generation and per lane's warp call.
    void* barrier_object(unsigned generation) const { return sync_object(generation % kRing); }
    void* warp_object(std::size_t thread, std::uint32_t call) const {
        return sync_object(kRing * (1 + thread) + call % kRing);
    }
    void* sync_object(std::size_t index) const { return sync_objects_ ? sync_objects_.get() + index : nullptr; }
    static constexpr std::size_t kRing = 4;  // a thread is at most one generation ahead of another

    // warp.cpp
    std::optional<std::string> check_warp_call(unsigned mask, int width) const;
    bool release_warp_groups();
    bool warp_group_ready(std::size_t warp_start, const EmulatedThread& caller) const;
    void complete_warp_group(std::size_t warp_start, WarpOp op, unsigned mask, int width);
    void run_aligned_instruction(std::size_t warp_start);
    void wait_for_warp_group();
    std::optional<std::string> describe_warp_deadlock() const;
    // async_copy.cpp: a thread that ends with copies pending is a fault; at
    // the block's end, poisoning is lifted and the copies' banks counted.
    void check_copies_at_exit();
    void finish_async_copies();

    const GridLaunch* launch_ = nullptr;
    uint3 block_index_{0, 0, 0};
    std::vector<EmulatedThread> threads_;
    StackPool stacks_;
    std::size_t running_ = 0;  // index of the fiber being resumed
    std::size_t waiting_at_barrier_ = 0;
    std::size_t exited_ = 0;
    unsigned barriers_passed_ = 0;
    std::optional<std::string> fault_;
    std::unique_ptr<char[]> sync_objects_;
};

}  // namespace ladon::emu::detail
