// Warp intrinsics: the lanes of a warp are the block's threads whose linear
// index / 32 is equal. An intrinsic is a rendezvous of the lanes its mask
// names; when all of them wait in it, every lane's result is computed from the
// values all contributed, in one step, so no lane can see a value from a
// later call (which a "write, barrier, read" exchange would need two barriers
// to prevent).
#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <optional>
#include <string>

#include "kernels/emu/block.hpp"
#include "kernels/emu/tsan.hpp"

namespace ladon::emu::detail {
namespace {

constexpr std::size_t lanes_per_warp = 32;

const char* intrinsic_name(WarpOp op) {
    switch (op) {
        case WarpOp::sync:
            return "__syncwarp";
        case WarpOp::shuffle_index:
            return "__shfl_sync";
        case WarpOp::shuffle_up:
            return "__shfl_up_sync";
        case WarpOp::shuffle_down:
            return "__shfl_down_sync";
        case WarpOp::shuffle_xor:
            return "__shfl_xor_sync";
        case WarpOp::ballot:
            return "__ballot_sync";
        case WarpOp::any:
            return "__any_sync";
        case WarpOp::all:
            return "__all_sync";
        case WarpOp::aligned:
            return "an aligned warp instruction";
    }
    return "a warp intrinsic";
}

const char* call_name(const EmulatedThread& thread) {
    return thread.op == WarpOp::aligned ? thread.instruction->name : intrinsic_name(thread.op);
}

std::string hex(unsigned mask) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%08x", mask);
    return text;
}

std::string call_text(const EmulatedThread& thread) {
    return std::string(call_name(thread)) + "(mask " + hex(thread.mask) + ")";
}

bool is_lane_in(unsigned mask, std::size_t lane) { return (mask >> lane & 1u) != 0; }

// The lane whose value `lane` reads, as PTX's shfl.sync defines it: the warp
// is cut into segments of `width` lanes; an index wraps within the segment,
// an up or down shift past its edge (or a xor past its end) reads the lane's
// own value. Only the low 5 bits of the lane argument count.
std::size_t shuffle_source(WarpOp op, std::size_t lane, int lane_argument, int width) {
    const auto segment_start = static_cast<int>(lane) & ~(width - 1);
    const int segment_end = segment_start + width - 1;
    const int argument = lane_argument & 31;
    const int self = static_cast<int>(lane);
    int source = self;
    switch (op) {
        case WarpOp::shuffle_index:
            source = segment_start + (argument & (width - 1));
            break;
        case WarpOp::shuffle_up:
            source = self - argument >= segment_start ? self - argument : self;
            break;
        case WarpOp::shuffle_down:
            source = self + argument <= segment_end ? self + argument : self;
            break;
        case WarpOp::shuffle_xor:
            source = (self ^ argument) <= segment_end ? self ^ argument : self;
            break;
        default:
            break;
    }
    return static_cast<std::size_t>(source);
}

}  // namespace

std::uint64_t BlockRunner::warp_collective(WarpOp op, unsigned mask, std::uint64_t value, int lane_argument,
                                           int width) {
    const tsan::Unchecked unchecked;
    if (auto error = check_warp_call(mask, width))
        fault_ = where(running_) + ": " + intrinsic_name(op) + "(mask " + hex(mask) + "): " + *error;
    if (fault_) abandon_running_thread();  // after `error` is destroyed: nothing of ours leaks
    EmulatedThread& thread = threads_[running_];
    thread.op = op;
    thread.instruction = nullptr;
    thread.mask = mask;
    thread.lane_argument = lane_argument;
    thread.width = width;
    thread.value = value;
    wait_for_warp_group();
    return thread.result;
}

// Every lane of the warp, or it deadlocks; the warp must be a whole one.
void BlockRunner::warp_aligned(const AlignedInstruction& instruction, const void* input, void* output) {
    const tsan::Unchecked unchecked;
    constexpr unsigned full_mask = 0xffffffffu;
    if (auto error = check_warp_call(full_mask, warpSize))
        fault_ = where(running_) + ": " + instruction.name + ": " + *error + " (every lane of a whole warp must execute it)";
    if (fault_) abandon_running_thread();
    EmulatedThread& thread = threads_[running_];
    thread.op = WarpOp::aligned;
    thread.mask = full_mask;
    thread.width = warpSize;
    thread.instruction = &instruction;
    thread.aligned_input = input;
    thread.aligned_output = output;
    wait_for_warp_group();
    abandon_if_faulted();  // the group's operands were refused (complete_warp_group)
}

void BlockRunner::wait_for_warp_group() {
    EmulatedThread& thread = threads_[running_];
    thread.wait = ThreadWait::warp;
    tsan::release(warp_object(running_, thread.warp_calls));
    thread.fiber.suspend();
    // Every lane of the group released its arrival before any was resumed.
    const std::size_t warp_start = running_ - running_ % lanes_per_warp;
    if constexpr (tsan::enabled)
        for (std::size_t lane = 0; lane < lanes_per_warp; ++lane)
            if (is_lane_in(thread.mask, lane))
                tsan::acquire(warp_object(warp_start + lane, thread.group_calls[lane]));
    ++thread.warp_calls;
}

// Misuse the GPU leaves undefined, reported at the call.
std::optional<std::string> BlockRunner::check_warp_call(unsigned mask, int width) const {
    const std::size_t lane = running_ % lanes_per_warp;
    const std::size_t lanes = std::min(lanes_per_warp, threads_.size() - (running_ - lane));
    if (!is_lane_in(mask, lane)) return "the calling lane " + std::to_string(lane) + " is not in the mask";
    if (lanes < lanes_per_warp && (mask >> lanes) != 0)
        return "the mask names lane " + std::to_string(std::countr_zero(mask >> lanes) + lanes) +
               ", but this warp has only " + std::to_string(lanes) + " threads (the block has " +
               std::to_string(threads_.size()) + ")";
    if (width < 1 || width > 32 || !std::has_single_bit(static_cast<unsigned>(width)))
        return "width " + std::to_string(width) + " is not a power of two from 1 to 32";
    return std::nullopt;
}

bool BlockRunner::release_warp_groups() {
    bool released = false;
    for (std::size_t warp_start = 0; warp_start < threads_.size(); warp_start += lanes_per_warp) {
        const std::size_t lanes = std::min(lanes_per_warp, threads_.size() - warp_start);
        for (std::size_t lane = 0; lane < lanes; ++lane) {
            const EmulatedThread& thread = threads_[warp_start + lane];
            if (thread.wait != ThreadWait::warp || !warp_group_ready(warp_start, thread)) continue;
            complete_warp_group(warp_start, thread.op, thread.mask, thread.width);
            released = true;
        }
    }
    return released;
}

bool BlockRunner::warp_group_ready(std::size_t warp_start, const EmulatedThread& caller) const {
    for (std::size_t lane = 0; lane < lanes_per_warp; ++lane) {
        if (!is_lane_in(caller.mask, lane)) continue;
        const EmulatedThread& other = threads_[warp_start + lane];
        if (other.wait != ThreadWait::warp || other.op != caller.op || other.mask != caller.mask ||
            other.width != caller.width || other.instruction != caller.instruction)
            return false;
    }
    return true;
}

void BlockRunner::complete_warp_group(std::size_t warp_start, WarpOp op, unsigned mask, int width) {
    if (op == WarpOp::aligned) run_aligned_instruction(warp_start);
    // Every result first: a value read must be the one given to this call.
    unsigned votes = 0;
    for (std::size_t lane = 0; lane < lanes_per_warp; ++lane)
        if (is_lane_in(mask, lane) && threads_[warp_start + lane].value != 0) votes |= 1u << lane;
    for (std::size_t lane = 0; lane < lanes_per_warp; ++lane) {
        if (!is_lane_in(mask, lane)) continue;
        EmulatedThread& thread = threads_[warp_start + lane];
        switch (op) {
            case WarpOp::sync:
                thread.result = 0;
                break;
            case WarpOp::ballot:
                thread.result = votes;
                break;
            case WarpOp::any:
                thread.result = votes != 0;
                break;
            case WarpOp::all:
                thread.result = votes == mask;
                break;
            case WarpOp::aligned:
                break;
            default: {
                // Reading a lane outside the mask is undefined on the GPU; a
                // poisoned value (NaN for floats) makes any use of it visible.
                const std::size_t source = shuffle_source(op, lane, thread.lane_argument, width);
                thread.result = is_lane_in(mask, source) ? threads_[warp_start + source].value : ~std::uint64_t{0};
            }
        }
    }
    for (std::size_t lane = 0; lane < lanes_per_warp; ++lane) {
        if (!is_lane_in(mask, lane)) continue;
        EmulatedThread& thread = threads_[warp_start + lane];
        if constexpr (tsan::enabled)  // whose arrivals the lane acquires (warp_collective)
            for (std::size_t other = 0; other < lanes_per_warp; ++other)
                if (is_lane_in(mask, other)) thread.group_calls[other] = threads_[warp_start + other].warp_calls;
        thread.wait = ThreadWait::none;
    }
}

void BlockRunner::run_aligned_instruction(std::size_t warp_start) {
    std::array<const void*, lanes_per_warp> inputs{};
    std::array<void*, lanes_per_warp> outputs{};
    for (std::size_t lane = 0; lane < lanes_per_warp; ++lane) {
        inputs[lane] = threads_[warp_start + lane].aligned_input;
        outputs[lane] = threads_[warp_start + lane].aligned_output;
    }
    const AlignedInstruction& instruction = *threads_[warp_start].instruction;
    int faulty_lane = 0;
    std::string error = instruction.run(inputs.data(), outputs.data(), faulty_lane);
    if (!error.empty() && !fault_)
        fault_ = where(warp_start + static_cast<std::size_t>(faulty_lane)) + ": " + instruction.name + ": " + error;
}

std::optional<std::string> BlockRunner::describe_warp_deadlock() const {
    for (std::size_t i = 0; i < threads_.size(); ++i) {
        const EmulatedThread& caller = threads_[i];
        if (caller.wait != ThreadWait::warp) continue;
        const std::size_t warp_start = i - i % lanes_per_warp;
        for (std::size_t lane = 0; lane < lanes_per_warp; ++lane) {
            if (!is_lane_in(caller.mask, lane)) continue;
            const EmulatedThread& other = threads_[warp_start + lane];
            const std::string prefix = where(i) + ": waits in " + call_text(caller) + ", but lane " +
                                       std::to_string(lane) + " (thread " + coordinates(other.index) + ") ";
            switch (other.wait) {
                case ThreadWait::exited:
                    return prefix + "has exited without calling it";
                case ThreadWait::block_barrier:
                    return prefix + "waits at __syncthreads() instead";
                case ThreadWait::warp:
                    if (other.op != caller.op || other.mask != caller.mask || other.width != caller.width)
                        return prefix + "is in " + call_text(other) + " (lanes must make the same call)";
                    break;
                case ThreadWait::none:
                    break;
            }
        }
    }
    return std::nullopt;
}

}  // namespace ladon::emu::detail
