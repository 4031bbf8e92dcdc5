// The emulated device's state: memory allocations, streams and events, and its
// properties. One process-wide device, guarded by mutexes: any host thread
// may call the runtime, as with CUDA.
#include "kernels/emu/runtime.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <functional>
#include <new>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/emu/builtins.hpp"
#include "kernels/emu/grid.hpp"
#include "kernels/emu/symbol_name.hpp"

// Stream capture (CUDA graphs): while a stream captures, its work is
// recorded instead of run; a graph launch runs the recording in order.
using RecordedWork = std::function<cudaError_t()>;
struct CUgraph_st {
    std::vector<RecordedWork> work;
};
struct CUgraphExec_st {
    std::vector<RecordedWork> work;
};

struct CUstream_st {
    bool capturing = false;
    bool invalidated = false;  // a synchronising call during capture
    std::vector<RecordedWork> recorded;
};

struct CUevent_st {
    unsigned flags = cudaEventDefault;
    std::optional<std::chrono::steady_clock::time_point> recorded;
};

namespace ladon::emu::detail {
namespace {

constexpr std::size_t kibibyte = 1024, gibibyte = kibibyte * kibibyte * kibibyte;
// An upper bound, so that a runaway allocation fails as on a GPU instead of
// exhausting the machine.
constexpr std::size_t emulated_global_memory_bytes = 16 * gibibyte;
constexpr std::align_val_t allocation_alignment{256};  // cudaMalloc's guarantee

// Live allocations by start address, so a pointer range can be checked.
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

Device& device() {
    static Device instance;
    return instance;
}

}  // namespace

bool is_global_memory(const void* address, std::size_t bytes) {
    return device().device_memory.contains(address, bytes) || device().pinned_memory.contains(address, bytes);
}

cudaError_t check_pointer_argument(const void* kernel, std::size_t index, const volatile void* pointer) {
    const void* address = const_cast<const void*>(pointer);
    if (address == nullptr || is_global_memory(address, 0)) return cudaSuccess;
    char text[32];
    std::snprintf(text, sizeof text, "%p", address);
    std::string message = "kernel " + function_name(kernel) + ": pointer argument " + std::to_string(index + 1) +
                          " (" + text +
                          ") lies in no device or pinned allocation: a host pointer, or freed memory? A GPU faults "
                          "with an illegal address where the kernel uses it";
    std::fprintf(stderr, "ladon emulator: %s\n", message.c_str());
    return record_kernel_fault(std::move(message));
}

namespace {

bool is_default_stream(cudaStream_t stream) {
    return stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread;
}

cudaError_t invalid_value(const char* call, const std::string& why) {
    return record_error(cudaErrorInvalidValue, std::string(call) + ": " + why);
}

std::string range_text(const void* memory, std::size_t bytes) {
    char text[64];
    std::snprintf(text, sizeof text, "[%p, +%zu bytes)", memory, bytes);
    return text;
}

// Checks the device-side ranges of a copy of `bytes` bytes.
cudaError_t check_copy(const char* call, void* destination, const void* source, std::size_t bytes,
                       cudaMemcpyKind kind) {
    if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
        return record_error(cudaErrorInvalidMemcpyDirection, std::string(call) + ": unknown cudaMemcpyKind");
    if (bytes == 0) return cudaSuccess;
    if (destination == nullptr || source == nullptr) return invalid_value(call, "null pointer");
    const bool device_destination = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool device_source = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (device_destination && !device().device_memory.contains(destination, bytes))
        return invalid_value(
            call, "destination " + range_text(destination, bytes) + " is not inside one cudaMalloc allocation");
    if (device_source && !device().device_memory.contains(source, bytes))
        return invalid_value(call, "source " + range_text(source, bytes) + " is not inside one cudaMalloc allocation");
    return cudaSuccess;
}

cudaError_t copy(const char* call, void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind) {
    if (const cudaError_t fault = pending_kernel_fault(); fault != cudaSuccess) return fault;
    if (const cudaError_t error = check_copy(call, destination, source, bytes, kind); error != cudaSuccess)
        return error;
    if (bytes != 0) std::memcpy(destination, source, bytes);
    return cudaSuccess;
}

cudaError_t fill(const char* call, void* device_pointer, int value, std::size_t bytes) {
    if (const cudaError_t fault = pending_kernel_fault(); fault != cudaSuccess) return fault;
    if (bytes == 0) return cudaSuccess;
    if (!device().device_memory.contains(device_pointer, bytes))
        return invalid_value(call, range_text(device_pointer, bytes) + " is not inside one cudaMalloc allocation");
    std::memset(device_pointer, value, bytes);
    return cudaSuccess;
}

}  // namespace

bool is_valid_stream(cudaStream_t stream) { return is_default_stream(stream) || device().streams.contains(stream); }

bool is_capturing(cudaStream_t stream) {
    return !is_default_stream(stream) && device().streams.contains(stream) && stream->capturing;
}

cudaError_t record(cudaStream_t stream, std::function<cudaError_t()> work) {
    stream->recorded.push_back(std::move(work));
    return cudaSuccess;
}

// A call that waits for `stream` while it captures: CUDA refuses it and
// invalidates the capture.
cudaError_t refuse_while_capturing(cudaStream_t stream, const char* call) {
    if (!is_capturing(stream)) return cudaSuccess;
    stream->invalidated = true;
    return record_error(cudaErrorStreamCaptureUnsupported, std::string(call) + ": the stream is capturing a graph");
}

}  // namespace ladon::emu::detail

using ladon::emu::detail::device;
using ladon::emu::detail::record_error;

// LADON_EMU_DEVICE_COUNT=0 plays a machine without a GPU, as the CUDA
// runtime reports it (cudaErrorNoDevice), so the fallback paths can be tested.
cudaError_t cudaGetDeviceCount(int* count) {
    if (count == nullptr) return record_error(cudaErrorInvalidValue, "cudaGetDeviceCount: null pointer");
    const char* devices = std::getenv("LADON_EMU_DEVICE_COUNT");
    if (devices != nullptr && std::string(devices) == "0") {
        *count = 0;
        return record_error(cudaErrorNoDevice, "cudaGetDeviceCount: LADON_EMU_DEVICE_COUNT=0");
    }
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device_index) {
    if (device_index != 0)
        return record_error(cudaErrorInvalidDevice,
                            "cudaSetDevice(" + std::to_string(device_index) + "): the emulator has device 0 only");
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device_index) {
    if (device_index == nullptr) return record_error(cudaErrorInvalidValue, "cudaGetDevice: null pointer");
    *device_index = 0;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* properties, int device_index) {
    if (properties == nullptr) return record_error(cudaErrorInvalidValue, "cudaGetDeviceProperties: null pointer");
    if (device_index != 0) return cudaSetDevice(device_index);
    using namespace ladon::emu::detail;
    *properties = cudaDeviceProp{};
    std::snprintf(properties->name, sizeof properties->name, "ladon emulator");
    properties->totalGlobalMem = emulated_global_memory_bytes;
    properties->sharedMemPerBlock = 48 * kibibyte;
    properties->sharedMemPerBlockOptin = max_dynamic_shared_bytes_optin;
    properties->sharedMemPerMultiprocessor = 228 * kibibyte;
    properties->regsPerBlock = 65536;
    properties->warpSize = warpSize;
    properties->maxThreadsPerBlock = max_threads_per_block;
    properties->maxThreadsDim[0] = 1024;
    properties->maxThreadsDim[1] = 1024;
    properties->maxThreadsDim[2] = 64;
    properties->maxGridSize[0] = 2147483647;
    properties->maxGridSize[1] = 65535;
    properties->maxGridSize[2] = 65535;
    properties->maxThreadsPerMultiProcessor = 2048;
    properties->totalConstMem = 64 * kibibyte;
    // Like an H100/H200 (sm_90), so code choosing paths by architecture takes
    // the GPU's. The multiprocessor count is the worker count: grids sized
    // "a few blocks per SM" stay small, which the emulator needs.
    properties->major = 9;
    properties->minor = 0;
    properties->multiProcessorCount = ladon::emu::worker_count();
    properties->concurrentKernels = 1;
    properties->unifiedAddressing = 1;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return ladon::emu::detail::pending_kernel_fault(); }

cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
    if (free_bytes == nullptr || total_bytes == nullptr)
        return record_error(cudaErrorInvalidValue, "cudaMemGetInfo: null pointer");
    *total_bytes = ladon::emu::detail::emulated_global_memory_bytes;
    *free_bytes = *total_bytes - device().device_memory.used_bytes();
    return cudaSuccess;
}

cudaError_t cudaMalloc(void** device_pointer, std::size_t bytes) {
    if (device_pointer == nullptr) return record_error(cudaErrorInvalidValue, "cudaMalloc: null pointer");
    *device_pointer = nullptr;
    if (bytes == 0) return cudaSuccess;
    *device_pointer = device().device_memory.allocate(bytes, ladon::emu::detail::emulated_global_memory_bytes);
    if (*device_pointer == nullptr)
        return record_error(cudaErrorMemoryAllocation,
                            "cudaMalloc: " + std::to_string(bytes) + " bytes do not fit in the emulated device memory");
    return cudaSuccess;
}

cudaError_t cudaFree(void* device_pointer) {
    if (device_pointer == nullptr) return cudaSuccess;
    if (!device().device_memory.release(device_pointer))
        return record_error(cudaErrorInvalidValue, "cudaFree: pointer is not from cudaMalloc (or freed twice)");
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void** host_pointer, std::size_t bytes) {
    if (host_pointer == nullptr) return record_error(cudaErrorInvalidValue, "cudaMallocHost: null pointer");
    *host_pointer = bytes == 0 ? nullptr : device().pinned_memory.allocate(bytes, SIZE_MAX);
    if (bytes != 0 && *host_pointer == nullptr)
        return record_error(cudaErrorMemoryAllocation, "cudaMallocHost: out of memory");
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void* host_pointer) {
    if (host_pointer == nullptr) return cudaSuccess;
    if (!device().pinned_memory.release(host_pointer))
        return record_error(cudaErrorInvalidValue, "cudaFreeHost: pointer is not from cudaMallocHost");
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind) {
    return ladon::emu::detail::copy("cudaMemcpy", destination, source, bytes, kind);
}

cudaError_t cudaMemcpyAsync(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
    if (!ladon::emu::detail::is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaMemcpyAsync: unknown stream");
    if (ladon::emu::detail::is_capturing(stream))
        return ladon::emu::detail::record(stream, [=] {
            return ladon::emu::detail::copy("cudaMemcpyAsync", destination, source, bytes, kind);
        });
    return ladon::emu::detail::copy("cudaMemcpyAsync", destination, source, bytes, kind);
}

// Rows of `width` bytes, each checked as one copy (so every row must lie in
// one allocation, as each would on a GPU).
cudaError_t cudaMemcpy2DAsync(void* destination, std::size_t destination_pitch, const void* source,
                              std::size_t source_pitch, std::size_t width, std::size_t height, cudaMemcpyKind kind,
                              cudaStream_t stream) {
    if (!ladon::emu::detail::is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaMemcpy2DAsync: unknown stream");
    if (height > 1 && (width > destination_pitch || width > source_pitch))
        return record_error(cudaErrorInvalidPitchValue, "cudaMemcpy2DAsync: width is larger than a pitch");
    if (ladon::emu::detail::is_capturing(stream))
        return ladon::emu::detail::record(stream, [=] {
            return cudaMemcpy2DAsync(destination, destination_pitch, source, source_pitch, width, height, kind,
                                     nullptr);
        });
    for (std::size_t row = 0; row < height; ++row) {
        const cudaError_t error = ladon::emu::detail::copy(
            "cudaMemcpy2DAsync", static_cast<unsigned char*>(destination) + row * destination_pitch,
            static_cast<const unsigned char*>(source) + row * source_pitch, width, kind);
        if (error != cudaSuccess) return error;
    }
    return cudaSuccess;
}

// A __constant__ variable is an ordinary global here: the copy is host to host.
cudaError_t cudaMemcpyToSymbol(const void* symbol, const void* source, std::size_t bytes, std::size_t offset,
                               cudaMemcpyKind) {
    return ladon::emu::detail::copy("cudaMemcpyToSymbol",
                                    static_cast<unsigned char*>(const_cast<void*>(symbol)) + offset, source, bytes,
                                    cudaMemcpyHostToHost);
}

cudaError_t cudaMemcpyFromSymbol(void* destination, const void* symbol, std::size_t bytes, std::size_t offset,
                                 cudaMemcpyKind) {
    return ladon::emu::detail::copy("cudaMemcpyFromSymbol", destination,
                                    static_cast<const unsigned char*>(symbol) + offset, bytes, cudaMemcpyHostToHost);
}

cudaError_t cudaMemset(void* device_pointer, int value, std::size_t bytes) {
    return ladon::emu::detail::fill("cudaMemset", device_pointer, value, bytes);
}

cudaError_t cudaMemsetAsync(void* device_pointer, int value, std::size_t bytes, cudaStream_t stream) {
    if (!ladon::emu::detail::is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaMemsetAsync: unknown stream");
    if (ladon::emu::detail::is_capturing(stream))
        return ladon::emu::detail::record(stream, [=] {
            return ladon::emu::detail::fill("cudaMemsetAsync", device_pointer, value, bytes);
        });
    return ladon::emu::detail::fill("cudaMemsetAsync", device_pointer, value, bytes);
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
    if (stream == nullptr) return record_error(cudaErrorInvalidValue, "cudaStreamCreate: null pointer");
    *stream = device().streams.create();
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    if (!device().streams.destroy(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: unknown stream");
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    if (!ladon::emu::detail::is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize: unknown stream");
    if (const cudaError_t refused = ladon::emu::detail::refuse_while_capturing(stream, "cudaStreamSynchronize");
        refused != cudaSuccess)
        return refused;
    return ladon::emu::detail::pending_kernel_fault();
}

cudaError_t cudaStreamQuery(cudaStream_t stream) { return cudaStreamSynchronize(stream); }

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
    if (!ladon::emu::detail::is_valid_stream(stream) || !device().events.contains(event))
        return record_error(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: unknown stream or event");
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
    if (event == nullptr) return record_error(cudaErrorInvalidValue, "cudaEventCreate: null pointer");
    *event = device().events.create();
    (*event)->flags = flags;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    if (!device().events.contains(event) || !ladon::emu::detail::is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaEventRecord: unknown event or stream");
    if (ladon::emu::detail::is_capturing(stream))
        return record_error(cudaErrorNotSupported, "cudaEventRecord: the emulator captures no events into graphs");
    // Streams are immediate: all work recorded before has already finished.
    event->recorded = std::chrono::steady_clock::now();
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    if (!device().events.contains(event))
        return record_error(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: unknown event");
    return ladon::emu::detail::pending_kernel_fault();
}

cudaError_t cudaEventQuery(cudaEvent_t event) { return cudaEventSynchronize(event); }

cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end) {
    if (milliseconds == nullptr) return record_error(cudaErrorInvalidValue, "cudaEventElapsedTime: null pointer");
    if (!device().events.contains(start) || !device().events.contains(end))
        return record_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: unknown event");
    if (!start->recorded || !end->recorded || (start->flags & cudaEventDisableTiming) ||
        (end->flags & cudaEventDisableTiming))
        return record_error(cudaErrorInvalidResourceHandle,
                            "cudaEventElapsedTime: an event was not recorded or was created without timing");
    *milliseconds = std::chrono::duration<float, std::milli>(*end->recorded - *start->recorded).count();
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    if (!device().events.destroy(event))
        return record_error(cudaErrorInvalidResourceHandle, "cudaEventDestroy: unknown event");
    return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
    if (ladon::emu::detail::is_default_stream(stream) || !device().streams.contains(stream))
        return record_error(cudaErrorStreamCaptureUnsupported,
                            "cudaStreamBeginCapture: only a created stream can capture (not the default stream)");
    if (stream->capturing)
        return record_error(cudaErrorIllegalState, "cudaStreamBeginCapture: the stream is already capturing");
    stream->capturing = true;
    stream->invalidated = false;
    stream->recorded.clear();
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
    if (graph == nullptr) return record_error(cudaErrorInvalidValue, "cudaStreamEndCapture: null pointer");
    if (!ladon::emu::detail::is_capturing(stream))
        return record_error(cudaErrorIllegalState, "cudaStreamEndCapture: the stream is not capturing");
    stream->capturing = false;
    std::vector<RecordedWork> work;
    work.swap(stream->recorded);
    if (stream->invalidated) {
        *graph = nullptr;
        return record_error(cudaErrorStreamCaptureInvalidated,
                            "cudaStreamEndCapture: a synchronising call during capture invalidated it");
    }
    *graph = device().graphs.create();
    (*graph)->work = std::move(work);
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
    if (status == nullptr) return record_error(cudaErrorInvalidValue, "cudaStreamIsCapturing: null pointer");
    if (!ladon::emu::detail::is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaStreamIsCapturing: unknown stream");
    *status = ladon::emu::detail::is_capturing(stream)
                  ? (stream->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive)
                  : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
    if (exec == nullptr || !device().graphs.contains(graph))
        return record_error(cudaErrorInvalidValue, "cudaGraphInstantiate: null pointer or unknown graph");
    *exec = device().graph_execs.create();
    (*exec)->work = graph->work;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    if (!device().graph_execs.contains(exec) || !ladon::emu::detail::is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaGraphLaunch: unknown graph or stream");
    if (ladon::emu::detail::is_capturing(stream))
        return record_error(cudaErrorNotSupported, "cudaGraphLaunch: the emulator does not capture graph launches");
    for (const auto& work : exec->work)
        if (const cudaError_t error = work(); error != cudaSuccess) return error;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    if (!device().graph_execs.destroy(exec))
        return record_error(cudaErrorInvalidResourceHandle, "cudaGraphExecDestroy: unknown graph");
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    if (!device().graphs.destroy(graph))
        return record_error(cudaErrorInvalidResourceHandle, "cudaGraphDestroy: unknown graph");
    return cudaSuccess;
}
