#include "kernels/emu/fiber.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <new>
#include <utility>

#include "kernels/emu/tsan.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define LADON_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LADON_EMU_ASAN 1
#endif
#endif

#if defined(LADON_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace ladon::emu::detail {
namespace ctx = boost::context::detail;

namespace {

// ASan tracks one stack per thread; every switch must tell it which stack we
// move to, or a report on a fiber stack is misread as a wild access and
// stack-use-after-return bookkeeping goes wrong (pitfall 1). No-ops otherwise.
inline void start_switch([[maybe_unused]] void** fake_stack_save, [[maybe_unused]] const void* bottom,
                         [[maybe_unused]] std::size_t size) {
#if defined(LADON_EMU_ASAN)
    __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#endif
}

inline void finish_switch([[maybe_unused]] void* fake_stack_save, [[maybe_unused]] const void** old_bottom,
                          [[maybe_unused]] std::size_t* old_size) {
#if defined(LADON_EMU_ASAN)
    __sanitizer_finish_switch_fiber(fake_stack_save, old_bottom, old_size);
#endif
}

}  // namespace

FiberStack::FiberStack() {
    guard_bytes_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    void* mapping =
        mmap(nullptr, guard_bytes_ + usable_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) throw std::bad_alloc();
    mapping_ = static_cast<std::byte*>(mapping);
    // Stacks grow down: the guard page sits below the lowest usable byte.
    if (mprotect(mapping_, guard_bytes_, PROT_NONE) != 0) {
        munmap(mapping_, guard_bytes_ + usable_bytes);
        throw std::bad_alloc();
    }
}

FiberStack::~FiberStack() { munmap(mapping_, guard_bytes_ + usable_bytes); }


FiberStack& StackPool::at(std::size_t index) {
    while (stacks_.size() <= index) stacks_.push_back(std::make_unique<FiberStack>());
    return *stacks_[index];
}

Fiber::~Fiber() { tsan::destroy_fiber(tsan_fiber_); }

void Fiber::swap(Fiber& other) noexcept {
    std::swap(context_, other.context_);
    std::swap(scheduler_, other.scheduler_);
    std::swap(entry_, other.entry_);
    std::swap(argument_, other.argument_);
    std::swap(stack_bottom_, other.stack_bottom_);
    std::swap(stack_size_, other.stack_size_);
    std::swap(fake_stack_, other.fake_stack_);
    std::swap(scheduler_stack_bottom_, other.scheduler_stack_bottom_);
    std::swap(scheduler_stack_size_, other.scheduler_stack_size_);
    std::swap(tsan_fiber_, other.tsan_fiber_);
    std::swap(tsan_scheduler_, other.tsan_scheduler_);
}

void Fiber::start(FiberStack& stack, std::size_t slot, Entry entry, void* argument) {
    // One ThreadSanitizer fiber per Fiber and stack, kept block after block:
    // making one per block costs ~20x more. Thread i of a block is then
    // ordered after thread i of the worker's previous block (program order),
    // which hides a race between just those two (see tsan.hpp).
    if (tsan_fiber_ == nullptr) tsan_fiber_ = tsan::create_fiber();
    tsan::release(&tsan_start_);  // the scheduler's history (the launch) happens before the thread
    // A reused stack still carries the redzones ASan poisoned for the frames
    // of its previous fiber (which may have been abandoned mid-kernel after a
    // fault); unpoison it or the new fiber trips over them.
#if defined(LADON_EMU_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(stack.bottom(), stack.size());
#endif
    constexpr std::size_t stagger_bytes = 128, stagger_slots = 32;
    const std::size_t offset = slot % stagger_slots * stagger_bytes;
    std::byte* top = stack.bottom() + stack.size() - offset;
    context_ = ctx::make_fcontext(top, stack.size() - offset, &Fiber::trampoline);
    scheduler_ = nullptr;
    entry_ = entry;
    argument_ = argument;
    stack_bottom_ = stack.bottom();
    stack_size_ = stack.size();
    fake_stack_ = nullptr;
}

void Fiber::resume() {
    void* scheduler_fake_stack = nullptr;
    start_switch(&scheduler_fake_stack, stack_bottom_, stack_size_);
    tsan_scheduler_ = tsan::current_fiber();
    tsan::switch_to(tsan_fiber_);
    const ctx::transfer_t back = ctx::jump_fcontext(context_, this);
    finish_switch(scheduler_fake_stack, nullptr, nullptr);
    context_ = back.fctx;
}

void Fiber::suspend() { switch_to_scheduler(false); }

// The switch's own bookkeeping on the fiber's side goes unchecked; the
// fiber leaves with checking on, as a finished one never comes back.
void Fiber::switch_to_scheduler(bool final_switch) {
    tsan::ignore_begin();
    // A finished fiber passes no fake-stack slot, so ASan frees its fake stack.
    start_switch(final_switch ? nullptr : &fake_stack_, scheduler_stack_bottom_, scheduler_stack_size_);
    void* const tsan_scheduler = tsan_scheduler_;
    const Context scheduler = scheduler_;
    tsan::ignore_end();
    tsan::switch_to(tsan_scheduler);
    const ctx::transfer_t back = ctx::jump_fcontext(scheduler, nullptr);
    tsan::ignore_begin();
    // Each resume() comes from a new point of the scheduler's stack.
    scheduler_ = back.fctx;
    finish_switch(fake_stack_, nullptr, nullptr);
    tsan::ignore_end();
}

void Fiber::trampoline(Transfer from_scheduler) {
    auto* fiber = static_cast<Fiber*>(from_scheduler.data);
    tsan::ignore_begin();  // the switch's own bookkeeping, on the fiber's side
    fiber->scheduler_ = from_scheduler.fctx;
    finish_switch(nullptr, &fiber->scheduler_stack_bottom_, &fiber->scheduler_stack_size_);
    const Entry entry = fiber->entry_;
    void* const argument = fiber->argument_;
    tsan::acquire(&fiber->tsan_start_);
    tsan::ignore_end();
    entry(argument);
    fiber->switch_to_scheduler(true);
    // A finished fiber is never resumed; its stack is reused by a new start().
    std::fputs("ladon emulator: a finished fiber was resumed\n", stderr);
    std::abort();
}

}  // namespace ladon::emu::detail
