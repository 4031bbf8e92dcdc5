#pragma once
// Cooperative fibers on Boost.Context's fcontext (a few instructions per
// switch; ucontext makes a system call per switch and is ~15x slower). One
// fiber runs one emulated CUDA thread; the worker thread that owns it is its
// scheduler, and a fiber never moves to another OS thread, so `threadIdx` and
// friends can be plain thread_local values (EMULATOR.md, pitfall 10).
//
// Stacks: 64 KiB each (peak use measured at 1.8 KiB, 6.4 KiB under ASan) with
// an inaccessible guard page below, so a stack overflow faults instead of
// silently corrupting the neighbouring fiber. A worker keeps its stacks in a
// StackPool and reuses them block after block.
#include <boost/context/detail/fcontext.hpp>
#include <cstddef>
#include <memory>
#include <vector>

namespace ladon::emu::detail {

class FiberStack {
public:
    FiberStack();
    ~FiberStack();
    FiberStack(const FiberStack&) = delete;
    FiberStack& operator=(const FiberStack&) = delete;

    // Lowest usable address (just above the guard page) and usable bytes.
    std::byte* bottom() const { return mapping_ + guard_bytes_; }
    std::size_t size() const { return usable_bytes; }

    static constexpr std::size_t usable_bytes = 64 * 1024;

private:
    std::byte* mapping_ = nullptr;
    std::size_t guard_bytes_ = 0;
};

// Grows on demand and never shrinks: stacks live as long as their worker.
class StackPool {
public:
    FiberStack& at(std::size_t index);

private:
    std::vector<std::unique_ptr<FiberStack>> stacks_;
};

// A fiber is started on a stack, resumed by its scheduler until it suspends
// (at a barrier or warp intrinsic) or its entry function returns.
class Fiber {
public:
    using Entry = void (*)(void* argument);

    Fiber() = default;
    // Moving hands over the ThreadSanitizer fiber (tsan.hpp), which the
    // destructor frees; a moved-to fiber's old one goes with the source.
    Fiber(Fiber&& other) noexcept { swap(other); }
    Fiber& operator=(Fiber&& other) noexcept {
        swap(other);
        return *this;
    }
    ~Fiber();

    // Prepares a fresh context on `stack`; the entry runs on the first
    // resume(). `slot` staggers the stack top by slot % 32 * 128 bytes: stacks
    // whose tops share a 4 KiB offset alias in the L1 cache (pitfall 9, ~20 %).
    void start(FiberStack& stack, std::size_t slot, Entry entry, void* argument);

    // From the scheduler: runs the fiber until it suspends or finishes.
    void resume();
    // From inside the fiber: back to the scheduler; returns when resumed.
    void suspend();

private:
    using Context = boost::context::detail::fcontext_t;
    using Transfer = boost::context::detail::transfer_t;

    static void trampoline(Transfer from_scheduler);
    void switch_to_scheduler(bool final_switch);
    void swap(Fiber& other) noexcept;

    Context context_ = nullptr;    // the fiber's saved context while it is not running
    Context scheduler_ = nullptr;  // the scheduler's saved context while the fiber runs
    Entry entry_ = nullptr;
    void* argument_ = nullptr;
    // AddressSanitizer bookkeeping (unused without ASan): the fiber's stack,
    // its fake stack while switched out, and the scheduler's stack bounds.
    const void* stack_bottom_ = nullptr;
    std::size_t stack_size_ = 0;
    void* fake_stack_ = nullptr;
    const void* scheduler_stack_bottom_ = nullptr;
    std::size_t scheduler_stack_size_ = 0;
    // ThreadSanitizer's contexts (null in other builds): this fiber's, made
    // at its first start(), and the scheduler's while the fiber runs.
    void* tsan_fiber_ = nullptr;
    void* tsan_scheduler_ = nullptr;
    char tsan_start_ = 0;  // released by start(), acquired by the thread's first step
};

}  // namespace ladon::emu::detail
