#pragma once
// ThreadSanitizer's view of the emulator, for the race-checking build
// (ladon_emu_tsan, README.md here). Each emulated thread is a TSan fiber
// created fresh for its block, and switches carry no happens-before: two
// emulated threads are ordered only by what CUDA orders them with, which the
// sync points model as release/acquire on objects of their own generation:
// - __syncthreads(): every thread releases the barrier's object on arrival
//   and acquires it when released;
// - a warp intrinsic: every lane releases its own arrival object and, when
//   the group is released, acquires those of all the lanes in the mask;
// - __threadfence(): the thread's next atomic is acq_rel (relaxed
//   otherwise), so "fence, then atomic" publishes to the block that reads
//   the atomic after it, and a missing fence is a race;
// - a launch: fibers start from the launching host thread's history (through
//   the worker pool), and the host acquires everything they did once the
//   grid has ended.
// The emulator's own bookkeeping (the scheduler thread, and the fibers'
// steps inside the sync points) is not checked; memory the emulator hands out
// anew (a fiber's stack, a block's shared memory) forgets its past accesses.
// Every function is a no-op in the other builds.
#include <cstddef>

#if defined(__SANITIZE_THREAD__)
#define LADON_EMU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LADON_EMU_TSAN 1
#endif
#endif

#if defined(LADON_EMU_TSAN)
#include <sanitizer/tsan_interface.h>
// Exported by ThreadSanitizer's runtime but not declared by GCC 12's header:
// stop and restart checking the calling thread's (or fiber's) accesses.
// Memory allocated or mapped while unchecked starts with no history; that is
// how the emulator hands out a fresh stack or shared array (AnnotateNewMemory
// does nothing in this runtime).
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif

namespace ladon::emu::detail::tsan {

#if defined(LADON_EMU_TSAN)
inline constexpr bool enabled = true;
inline void* create_fiber() { return __tsan_create_fiber(0); }
inline void destroy_fiber(void* fiber) {
    if (fiber != nullptr) __tsan_destroy_fiber(fiber);
}
inline void* current_fiber() { return __tsan_get_current_fiber(); }
inline void switch_to(void* fiber) { __tsan_switch_to_fiber(fiber, __tsan_switch_to_fiber_no_sync); }
inline void release(void* object) { __tsan_release(object); }
inline void acquire(void* object) { __tsan_acquire(object); }
inline void ignore_begin() { __tsan_ignore_thread_begin(); }
inline void ignore_end() { __tsan_ignore_thread_end(); }
#else
inline constexpr bool enabled = false;
inline void* create_fiber() { return nullptr; }
inline void destroy_fiber(void*) {}
inline void* current_fiber() { return nullptr; }
inline void switch_to(void*) {}
inline void release(void*) {}
inline void acquire(void*) {}
inline void ignore_begin() {}
inline void ignore_end() {}
#endif

// The calling thread's or fiber's accesses go unchecked while it lives.
struct Unchecked {
    Unchecked() { ignore_begin(); }
    ~Unchecked() { ignore_end(); }
    Unchecked(const Unchecked&) = delete;
    Unchecked& operator=(const Unchecked&) = delete;
};

// What every fiber releases when it ends and the launching thread acquires
// when the grid has ended.
void* launch_end_object();

// __threadfence() marks the running emulated thread; its next atomic is then
// acq_rel rather than relaxed (atomics.hpp). take_fence() reads and clears
// the mark.
void mark_fence();
bool take_fence();

}  // namespace ladon::emu::detail::tsan
