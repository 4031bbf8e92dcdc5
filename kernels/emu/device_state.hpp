#pragma once
// The emulated device's state (internal to the emulator): allocations,
// streams, events and graphs, shared by runtime.cpp (memory, properties,
// copies) and streams.cpp (streams, events, graphs). One process-wide device,
// guarded by mutexes: any host thread may call the runtime, as with CUDA.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <unordered_map>
#include <vector>

#include "kernels/emu/builtins.hpp"
#include "kernels/emu/keywords.hpp"

// Stream capture (CUDA graphs): while a stream captures, its work is
// recorded instead of run; a graph launch runs the recording in order.
using RecordedWork = std::function<cudaError_t()>;
struct CUgraph_st {
    std::vector<RecordedWork> work;
};
struct CUgraphExec_st {
    std::vector<RecordedWork> work;
};

// A created stream runs its work in order, when something waits for it
// (streams.cpp): a synchronising call, an event recorded after the work, or
// work on the legacy default stream (unless the stream is non-blocking).
struct QueuedWork {
    std::uint64_t sequence;
    RecordedWork work;
};
struct CUstream_st {
    bool non_blocking = false;  // cudaStreamNonBlocking: no implicit wait for the default stream
    bool capturing = false;
    bool invalidated = false;  // a synchronising call during capture
    std::vector<RecordedWork> recorded;
    std::deque<QueuedWork> queued;
    std::uint64_t submitted = 0;  // the last sequence number handed out
    std::uint64_t created = 0;    // the order streams run in when all must
};

struct CUevent_st {
    unsigned flags = cudaEventDefault;
    std::optional<std::chrono::steady_clock::time_point> recorded;
    // Recorded on a created stream: which, and the sequence number of the
    // record in its queue. Waiting for the event runs the queue up to it.
    cudaStream_t stream = nullptr;
    std::uint64_t sequence = 0;
};


namespace ladon::emu::detail {

constexpr std::size_t kibibyte = 1024, gibibyte = kibibyte * kibibyte * kibibyte;
// An upper bound, so that a runaway allocation fails as on a GPU instead of
// exhausting the machine.
constexpr std::size_t emulated_global_memory_bytes = 16 * gibibyte;
constexpr std::align_val_t allocation_alignment{256};  // cudaMalloc's guarantee

class AllocationTable {
public:
    explicit AllocationTable(bool poison) : poison_(poison) {}
    ~AllocationTable() {
        for (auto [address, bytes] : blocks_) ::operator delete(reinterpret_cast<void*>(address), allocation_alignment);
    }

    void* allocate(std::size_t bytes, std::size_t capacity) {
        std::lock_guard lock(mutex_);
        if (bytes > capacity - used_bytes_) return nullptr;
        void* memory = ::operator new(bytes, allocation_alignment, std::nothrow);
        if (memory == nullptr) return nullptr;
        if (poison_) std::memset(memory, poison_byte, bytes);
        blocks_.emplace(reinterpret_cast<std::uintptr_t>(memory), bytes);
        used_bytes_ += bytes;
        return memory;
    }

    bool release(void* memory) {
        std::lock_guard lock(mutex_);
        const auto found = blocks_.find(reinterpret_cast<std::uintptr_t>(memory));
        if (found == blocks_.end()) return false;
        used_bytes_ -= found->second;
        blocks_.erase(found);
        ::operator delete(memory, allocation_alignment);
        return true;
    }

    // Whether [memory, memory + bytes) lies inside one allocation.
    bool contains(const void* memory, std::size_t bytes) const {
        const auto address = reinterpret_cast<std::uintptr_t>(memory);
        std::lock_guard lock(mutex_);
        auto after = blocks_.upper_bound(address);
        if (after == blocks_.begin()) return false;
        const auto& [start, size] = *std::prev(after);
        return address - start <= size && bytes <= size - (address - start);
    }

    std::size_t used_bytes() const {
        std::lock_guard lock(mutex_);
        return used_bytes_;
    }

private:
    const bool poison_;
    mutable std::mutex mutex_;
    std::map<std::uintptr_t, std::size_t> blocks_;
    std::size_t used_bytes_ = 0;
};

// Owns every live stream or event, so a stale or foreign handle is detected.
template <typename Handle>
class HandleTable {
public:
    Handle* create() {
        auto handle = std::make_unique<Handle>();
        Handle* raw = handle.get();
        std::lock_guard lock(mutex_);
        handles_.emplace(raw, std::move(handle));
        return raw;
    }
    bool destroy(Handle* handle) {
        std::lock_guard lock(mutex_);
        return handles_.erase(handle) == 1;
    }
    bool contains(Handle* handle) const {
        std::lock_guard lock(mutex_);
        return handles_.contains(handle);
    }
    std::vector<Handle*> all() const {
        std::lock_guard lock(mutex_);
        std::vector<Handle*> handles;
        for (const auto& entry : handles_) handles.push_back(entry.first);
        return handles;
    }

private:
    mutable std::mutex mutex_;
    std::unordered_map<Handle*, std::unique_ptr<Handle>> handles_;
};

struct Device {
    AllocationTable device_memory{true};
    AllocationTable pinned_memory{false};
    HandleTable<CUstream_st> streams;
    HandleTable<CUevent_st> events;
    HandleTable<CUgraph_st> graphs;
    HandleTable<CUgraphExec_st> graph_execs;
};

Device& device();

bool is_default_stream(cudaStream_t stream);
// Runs the queued work of every created stream (non-blocking ones too, or
// not), in the order the streams were created.
void run_queued_work(bool non_blocking_too);

}  // namespace ladon::emu::detail
