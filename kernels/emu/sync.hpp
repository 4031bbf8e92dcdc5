#pragma once
// Every point where an emulated thread waits for others: __syncthreads() and
// its reductions for the block, and the *_sync warp intrinsics. Each one
// suspends the calling fiber; the block's scheduler resumes it when all the
// threads it waits for have arrived (block.cpp, warp.cpp). Fibers switch only
// here, which is why code between two sync points runs as one piece.
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "kernels/emu/builtins.hpp"

namespace ladon::emu::detail {

enum class BarrierReduction : std::uint8_t { none, count, all, any };

// Waits until every thread of the block has arrived; returns the reduction of
// the threads' predicates (0 for `none`).
int block_barrier(BarrierReduction reduction, int predicate);

enum class WarpOp : std::uint8_t { sync, shuffle_index, shuffle_up, shuffle_down, shuffle_xor, ballot, any, all, aligned };

// Rendezvous of the lanes named in `mask`: every one of them must call the
// same intrinsic with the same mask. `value` is the lane's contribution (its
// bits, zero-extended), `lane_argument` the source lane, delta or lane mask.
// Returns this lane's result bits.
std::uint64_t warp_collective(WarpOp op, unsigned mask, std::uint64_t value, int lane_argument, int width);

// A warp-wide `.sync.aligned` instruction (mma, ldmatrix: tensor_core.cpp).
// Every lane of a full warp must call it, the same instruction; when all 32
// have, `run` computes every lane's output from every lane's input at once,
// so payloads may be as large as the instruction needs. `run` returns an
// empty string, or what is wrong with the operands of the lane it sets.
struct AlignedInstruction {
    const char* name;  // "mma.m16n8k8.tf32", for messages
    std::string (*run)(const void* const* inputs, void* const* outputs, int& faulty_lane);
};
void warp_aligned(const AlignedInstruction& instruction, const void* input, void* output);

// A fault found by the running emulated thread itself (a misused primitive):
// records "block (..), thread (..): message" for the launch. The caller then
// calls abandon_if_faulted() once its own temporaries are gone, which never
// returns: the fiber's frames are not unwound, so nothing of it may own heap
// memory then.
void report_fault(std::string message);
void abandon_if_faulted();

// A shuffled value travels as up to 64 raw bits, whatever its type.
template <typename T>
std::uint64_t to_lane_bits(const T& value) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(std::uint64_t),
                  "warp shuffles move trivially copyable values of at most 8 bytes");
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    return bits;
}

template <typename T>
T from_lane_bits(std::uint64_t bits) {
    T value;
    std::memcpy(&value, &bits, sizeof(T));
    return value;
}

}  // namespace ladon::emu::detail

inline void __syncthreads() { ladon::emu::detail::block_barrier(ladon::emu::detail::BarrierReduction::none, 0); }
inline int __syncthreads_count(int predicate) {
    return ladon::emu::detail::block_barrier(ladon::emu::detail::BarrierReduction::count, predicate);
}
inline int __syncthreads_and(int predicate) {
    return ladon::emu::detail::block_barrier(ladon::emu::detail::BarrierReduction::all, predicate);
}
inline int __syncthreads_or(int predicate) {
    return ladon::emu::detail::block_barrier(ladon::emu::detail::BarrierReduction::any, predicate);
}

inline void __syncwarp(unsigned mask = 0xffffffffu) {
    ladon::emu::detail::warp_collective(ladon::emu::detail::WarpOp::sync, mask, 0, 0, warpSize);
}

template <typename T>
T __shfl_sync(unsigned mask, T value, int source_lane, int width = warpSize) {
    using namespace ladon::emu::detail;
    return from_lane_bits<T>(warp_collective(WarpOp::shuffle_index, mask, to_lane_bits(value), source_lane, width));
}
template <typename T>
T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = warpSize) {
    using namespace ladon::emu::detail;
    return from_lane_bits<T>(
        warp_collective(WarpOp::shuffle_up, mask, to_lane_bits(value), static_cast<int>(delta), width));
}
template <typename T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = warpSize) {
    using namespace ladon::emu::detail;
    return from_lane_bits<T>(
        warp_collective(WarpOp::shuffle_down, mask, to_lane_bits(value), static_cast<int>(delta), width));
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = warpSize) {
    using namespace ladon::emu::detail;
    return from_lane_bits<T>(warp_collective(WarpOp::shuffle_xor, mask, to_lane_bits(value), lane_mask, width));
}

inline unsigned __ballot_sync(unsigned mask, int predicate) {
    using namespace ladon::emu::detail;
    return static_cast<unsigned>(warp_collective(WarpOp::ballot, mask, predicate != 0, 0, warpSize));
}
inline int __any_sync(unsigned mask, int predicate) {
    using namespace ladon::emu::detail;
    return static_cast<int>(warp_collective(WarpOp::any, mask, predicate != 0, 0, warpSize));
}
inline int __all_sync(unsigned mask, int predicate) {
    using namespace ladon::emu::detail;
    return static_cast<int>(warp_collective(WarpOp::all, mask, predicate != 0, 0, warpSize));
}
