// cp.async under the emulator. A copy is checked and its destination
// poisoned when issued (0xFF bytes, and ASan poisoning in that build), and
// it is carried out at the cp.async.wait_group that completes its group, so
// a read of the destination before the wait sees the poison (NaN), an ASan
// report or, in the race build, a race with the write at the wait. A thread
// that ends with copies pending faults.
#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "kernels/emu/bank_count.hpp"
#include "kernels/emu/block.hpp"
#include "kernels/emu/runtime.hpp"
#include "kernels/emu/shared_memory.hpp"
#include "kernels/emu/tensor_core.hpp"
#include "kernels/emu/tsan.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define LADON_EMU_POISON(address, bytes) ASAN_POISON_MEMORY_REGION(address, bytes)
#define LADON_EMU_UNPOISON(address, bytes) ASAN_UNPOISON_MEMORY_REGION(address, bytes)
#else
#define LADON_EMU_POISON(address, bytes) static_cast<void>(address)
#define LADON_EMU_UNPOISON(address, bytes) static_cast<void>(address)
#endif

namespace ladon::emu::detail {
namespace {

std::string pointer_text(const void* pointer) {
    char text[32];
    std::snprintf(text, sizeof text, "%p", pointer);
    return text;
}

std::string check_copy(const void* destination, const void* source, int bytes, int source_bytes) {
    const std::string call = "cp.async of " + std::to_string(bytes) + " bytes";
    if (bytes != 4 && bytes != 8 && bytes != 16) return "cp.async copies 4, 8 or 16 bytes, not " + std::to_string(bytes);
    if (source_bytes < 0 || source_bytes > bytes)
        return call + ": " + std::to_string(source_bytes) + " source bytes (from 0 to " + std::to_string(bytes) +
               "; the rest is zero-filled)";
    const auto size = static_cast<std::uintptr_t>(bytes);
    if (reinterpret_cast<std::uintptr_t>(destination) % size != 0)
        return call + ": destination " + pointer_text(destination) + " is not aligned to " + std::to_string(bytes);
    if (!is_shared_memory(destination, size))
        return call + ": destination " + pointer_text(destination) + " is not in the block's shared memory";
    if (source_bytes == 0) return {};
    if (reinterpret_cast<std::uintptr_t>(source) % size != 0)
        return call + ": source " + pointer_text(source) + " is not aligned to " + std::to_string(bytes);
    if (!is_global_memory(source, static_cast<std::size_t>(source_bytes)))
        return call + ": source " + pointer_text(source) + " (" + std::to_string(source_bytes) +
               " bytes) is not inside one device or pinned allocation";
    return {};
}

// Plain loops, not memcpy or memset: these writes must count as the emulated
// thread's for ThreadSanitizer, which sees none of its interceptors'
// accesses made on a fiber (a planted race went unreported with memcpy).
void fill_bytes(std::byte* destination, std::byte value, int count) {
    for (int i = 0; i < count; ++i) destination[i] = value;
}
void copy_bytes(std::byte* destination, const std::byte* source, int count) {
    for (int i = 0; i < count; ++i) destination[i] = source[i];
}

}  // namespace

void BlockRunner::async_copy(void* destination, const void* source, int bytes, int source_bytes) {
    {
        std::string error;
        {
            const tsan::Unchecked unchecked;
            error = check_copy(destination, source, bytes, source_bytes);
        }
        if (!error.empty()) report_fault(std::move(error));
    }
    abandon_if_faulted();
    // This thread's write, as far as the race build is concerned.
    fill_bytes(static_cast<std::byte*>(destination), std::byte{poison_byte}, bytes);
    const tsan::Unchecked unchecked;
    EmulatedThread& thread = threads_[running_];
    thread.pending_copies.push_back({static_cast<std::byte*>(destination), static_cast<const std::byte*>(source),
                                     static_cast<std::uint8_t>(bytes), static_cast<std::uint8_t>(source_bytes),
                                     PendingCopy::uncommitted});
    thread.issued_copies.emplace_back(reinterpret_cast<std::uintptr_t>(destination), static_cast<std::uint8_t>(bytes));
    LADON_EMU_POISON(destination, static_cast<std::size_t>(bytes));
}

void BlockRunner::commit_async_copies() {
    const tsan::Unchecked unchecked;
    EmulatedThread& thread = threads_[running_];
    for (PendingCopy& copy : thread.pending_copies)
        if (copy.group == PendingCopy::uncommitted) copy.group = thread.committed_groups;
    ++thread.committed_groups;
}

void BlockRunner::wait_async_copies(int newest_groups_left) {
    EmulatedThread& thread = threads_[running_];
    std::vector<PendingCopy> completed;
    {
        const tsan::Unchecked unchecked;
        const auto done = [&](const PendingCopy& copy) {
            return copy.group != PendingCopy::uncommitted &&
                   std::int64_t{copy.group} + newest_groups_left < std::int64_t{thread.committed_groups};
        };
        for (const PendingCopy& copy : thread.pending_copies)
            if (done(copy)) completed.push_back(copy);
        std::erase_if(thread.pending_copies, done);
    }
    for (const PendingCopy& copy : completed) {  // checked: this thread's write
        LADON_EMU_UNPOISON(copy.destination, copy.bytes);
        copy_bytes(copy.destination, copy.source, copy.source_bytes);
        fill_bytes(copy.destination + copy.source_bytes, std::byte{0}, copy.bytes - copy.source_bytes);
    }
}

void BlockRunner::check_copies_at_exit() {
    const EmulatedThread& thread = threads_[running_];
    if (thread.pending_copies.empty()) return;
    fault_ = where(running_) + ": the thread ended with " + std::to_string(thread.pending_copies.size()) +
             " cp.async copies not waited for (a cp.async.wait_group or wait_all is missing)";
}

// At the block's end, from the scheduler: copies left pending (a fault) lose
// their ASan poisoning, so the next block may use the memory; the copies'
// shared-memory phases are counted, warp by warp, the k-th copy of every
// lane being one instruction.
void BlockRunner::finish_async_copies() {
    for (EmulatedThread& thread : threads_)
        for (const PendingCopy& copy : thread.pending_copies) LADON_EMU_UNPOISON(copy.destination, copy.bytes);
    std::vector<std::pair<std::size_t, BankAccess>> accesses;  // by phase: copy size, then lane / lanes per phase
    std::vector<BankAccess> phase;
    for (std::size_t warp = 0; warp < threads_.size(); warp += 32) {
        const std::size_t end = std::min(threads_.size(), warp + 32);
        for (std::size_t k = 0;; ++k) {
            accesses.clear();
            for (std::size_t lane = warp; lane < end; ++lane) {
                const auto& issued = threads_[lane].issued_copies;
                if (k >= issued.size()) continue;
                const auto [address, bytes] = issued[k];
                accesses.push_back({bytes * 64 + (lane - warp) / (128 / bytes), {address, bytes}});
            }
            if (accesses.empty()) break;
            std::stable_sort(accesses.begin(), accesses.end(),
                             [](const auto& x, const auto& y) { return x.first < y.first; });
            for (std::size_t i = 0; i < accesses.size();) {
                phase.clear();
                const std::size_t key = accesses[i].first;
                for (; i < accesses.size() && accesses[i].first == key; ++i) phase.push_back(accesses[i].second);
                count_bank_phase(BankCounter::cp_async, phase);
            }
        }
    }
}

// Called by the running thread through tensor_core.cuh.
void cp_async(void* shared_destination, const void* global_source, int bytes, int source_bytes) {
    running_block("cp.async").async_copy(shared_destination, global_source, bytes, source_bytes);
}
void cp_async_commit() { running_block("cp.async.commit_group").commit_async_copies(); }
void cp_async_wait(int newest_groups_left) { running_block("cp.async.wait_group").wait_async_copies(newest_groups_left); }

}  // namespace ladon::emu::detail
