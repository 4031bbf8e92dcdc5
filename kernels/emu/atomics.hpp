#pragma once
// CUDA's atomic functions. Fibers of one block switch only at sync points, so
// within a block a plain read-modify-write would do; but blocks run on several
// workers at once, and the emulator cannot tell which addresses other blocks
// share, so every atomic is a real std::atomic_ref operation. Relaxed order,
// as CUDA's atomics: order needs __threadfence().
#include <atomic>

#include "kernels/emu/tsan.hpp"

namespace ladon::emu::detail {

// The order of the calling thread's atomic: relaxed, as CUDA's. The
// race-checking build, which models no fence, makes the first atomic after a
// __threadfence() acq_rel instead: "fence, then atomic" is how a block
// publishes to another (tsan.hpp), and without the fence it stays relaxed, so
// a missing fence is a race report.
inline std::memory_order atomic_order() {
    if constexpr (tsan::enabled) return tsan::take_fence() ? std::memory_order_acq_rel : std::memory_order_relaxed;
    return std::memory_order_relaxed;
}
inline std::memory_order load_order(std::memory_order order) {
    return order == std::memory_order_acq_rel ? std::memory_order_acquire : order;
}

template <typename T>
T atomic_fetch_max(T* address, T value) {
    std::atomic_ref<T> target(*address);
    const std::memory_order order = atomic_order();
    T old = target.load(load_order(order));
    while (old < value && !target.compare_exchange_weak(old, value, order, load_order(order))) {
    }
    return old;
}

template <typename T>
T atomic_fetch_min(T* address, T value) {
    std::atomic_ref<T> target(*address);
    const std::memory_order order = atomic_order();
    T old = target.load(load_order(order));
    while (value < old && !target.compare_exchange_weak(old, value, order, load_order(order))) {
    }
    return old;
}

// Replaces the value with next(old) atomically; returns old.
template <typename T, typename Next>
T atomic_update(T* address, Next next) {
    std::atomic_ref<T> target(*address);
    const std::memory_order order = atomic_order();
    T old = target.load(load_order(order));
    while (!target.compare_exchange_weak(old, next(old), order, load_order(order))) {
    }
    return old;
}

template <typename T>
T atomic_compare_and_swap(T* address, T compare, T value) {
    const std::memory_order order = atomic_order();
    std::atomic_ref<T>(*address).compare_exchange_strong(compare, value, order, load_order(order));
    return compare;  // the old value whether or not the swap happened
}

}  // namespace ladon::emu::detail

// The overload sets are CUDA's, so a call that would not compile for the GPU
// (atomicAdd on long long, say) does not compile here either.
#define LADON_EMU_ATOMIC(name, type, operation)                                             \
    inline type name(type* address, type value) {                                           \
        return std::atomic_ref<type>(*address).operation(value, ladon::emu::detail::atomic_order()); \
    }
LADON_EMU_ATOMIC(atomicAdd, int, fetch_add)
LADON_EMU_ATOMIC(atomicAdd, unsigned, fetch_add)
LADON_EMU_ATOMIC(atomicAdd, unsigned long long, fetch_add)
LADON_EMU_ATOMIC(atomicAdd, float, fetch_add)
LADON_EMU_ATOMIC(atomicAdd, double, fetch_add)
LADON_EMU_ATOMIC(atomicSub, int, fetch_sub)
LADON_EMU_ATOMIC(atomicSub, unsigned, fetch_sub)
LADON_EMU_ATOMIC(atomicExch, int, exchange)
LADON_EMU_ATOMIC(atomicExch, unsigned, exchange)
LADON_EMU_ATOMIC(atomicExch, unsigned long long, exchange)
LADON_EMU_ATOMIC(atomicExch, float, exchange)
LADON_EMU_ATOMIC(atomicAnd, int, fetch_and)
LADON_EMU_ATOMIC(atomicAnd, unsigned, fetch_and)
LADON_EMU_ATOMIC(atomicAnd, unsigned long long, fetch_and)
LADON_EMU_ATOMIC(atomicOr, int, fetch_or)
LADON_EMU_ATOMIC(atomicOr, unsigned, fetch_or)
LADON_EMU_ATOMIC(atomicOr, unsigned long long, fetch_or)
LADON_EMU_ATOMIC(atomicXor, int, fetch_xor)
LADON_EMU_ATOMIC(atomicXor, unsigned, fetch_xor)
LADON_EMU_ATOMIC(atomicXor, unsigned long long, fetch_xor)
#undef LADON_EMU_ATOMIC

#define LADON_EMU_ATOMIC_MIN_MAX(type)                                                                                \
    inline type atomicMax(type* address, type value) { return ladon::emu::detail::atomic_fetch_max(address, value); } \
    inline type atomicMin(type* address, type value) { return ladon::emu::detail::atomic_fetch_min(address, value); }
LADON_EMU_ATOMIC_MIN_MAX(int)
LADON_EMU_ATOMIC_MIN_MAX(unsigned)
LADON_EMU_ATOMIC_MIN_MAX(long long)
LADON_EMU_ATOMIC_MIN_MAX(unsigned long long)
#undef LADON_EMU_ATOMIC_MIN_MAX

#define LADON_EMU_ATOMIC_CAS(type)                                                   \
    inline type atomicCAS(type* address, type compare, type value) {                 \
        return ladon::emu::detail::atomic_compare_and_swap(address, compare, value); \
    }
LADON_EMU_ATOMIC_CAS(int)
LADON_EMU_ATOMIC_CAS(unsigned)
LADON_EMU_ATOMIC_CAS(unsigned long long)
LADON_EMU_ATOMIC_CAS(unsigned short)
#undef LADON_EMU_ATOMIC_CAS

// Wrapping counters: atomicInc restarts at 0 after `limit`, atomicDec
// restarts at `limit` after 0 (or from anything above it).
inline unsigned atomicInc(unsigned* address, unsigned limit) {
    return ladon::emu::detail::atomic_update(address, [limit](unsigned old) { return old >= limit ? 0u : old + 1; });
}
inline unsigned atomicDec(unsigned* address, unsigned limit) {
    return ladon::emu::detail::atomic_update(
        address, [limit](unsigned old) { return old == 0 || old > limit ? limit : old - 1; });
}

// Memory fences: blocks on different workers see each other's writes in order.
// ThreadSanitizer models no fence (g++ refuses them under it): the race
// build marks the thread's next atomic instead (atomic_order above).
inline void __threadfence() {
    if constexpr (ladon::emu::detail::tsan::enabled)
        ladon::emu::detail::tsan::mark_fence();
    else
        std::atomic_thread_fence(std::memory_order_seq_cst);
}
// A block runs on one worker thread: keeping the compiler from reordering is enough.
inline void __threadfence_block() { std::atomic_signal_fence(std::memory_order_seq_cst); }
