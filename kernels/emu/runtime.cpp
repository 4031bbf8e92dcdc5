// The emulated device: memory allocations, copies and fills, and its
// properties (streams, events and graphs: streams.cpp). One process-wide
// device, guarded by mutexes: any host thread may call the runtime.
#include "kernels/emu/runtime.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/emu/builtins.hpp"
#include "kernels/emu/grid.hpp"
#include "kernels/emu/symbol_name.hpp"
#include "kernels/emu/device_state.hpp"

namespace ladon::emu::detail {

Device& device() {
    static Device instance;
    return instance;
}

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

cudaError_t check_fill(const char* call, void* device_pointer, std::size_t bytes) {
    if (bytes != 0 && !device().device_memory.contains(device_pointer, bytes))
        return invalid_value(call, range_text(device_pointer, bytes) + " is not inside one cudaMalloc allocation");
    return cudaSuccess;
}

cudaError_t fill(const char* call, void* device_pointer, int value, std::size_t bytes) {
    if (const cudaError_t fault = pending_kernel_fault(); fault != cudaSuccess) return fault;
    if (const cudaError_t error = check_fill(call, device_pointer, bytes); error != cudaSuccess) return error;
    if (bytes != 0) std::memset(device_pointer, value, bytes);
    return cudaSuccess;
}

// A copy or fill on `stream`: refused at once if its arguments are wrong,
// else submitted (run now on the default stream, queued on a created one).
template <typename Check, typename Work>
cudaError_t checked_submit(cudaStream_t stream, const char* call, Check check, Work work) {
    if (!is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, std::string(call) + ": unknown stream");
    if (const cudaError_t error = check(); error != cudaSuccess) return error;
    return submit(stream, work);
}

}  // namespace

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

cudaError_t cudaDeviceSynchronize() {
    ladon::emu::detail::run_queued_work(true);
    return ladon::emu::detail::pending_kernel_fault();
}

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

// The synchronous calls run on the legacy default stream: after every
// blocking stream's queued work.
static cudaError_t copy_on(cudaStream_t stream, const char* call, void* destination, const void* source,
                           std::size_t bytes, cudaMemcpyKind kind) {
    using namespace ladon::emu::detail;
    return checked_submit(
        stream, call, [=] { return check_copy(call, destination, source, bytes, kind); },
        [=] { return copy(call, destination, source, bytes, kind); });
}

cudaError_t cudaMemcpy(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind) {
    return copy_on(nullptr, "cudaMemcpy", destination, source, bytes, kind);
}

cudaError_t cudaMemcpyAsync(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
    return copy_on(stream, "cudaMemcpyAsync", destination, source, bytes, kind);
}

// Rows of `width` bytes, each checked as one copy (so every row must lie in
// one allocation, as each would on a GPU).
cudaError_t cudaMemcpy2DAsync(void* destination, std::size_t destination_pitch, const void* source,
                              std::size_t source_pitch, std::size_t width, std::size_t height, cudaMemcpyKind kind,
                              cudaStream_t stream) {
    using namespace ladon::emu::detail;
    const auto rows = [=](auto each_row) {
        for (std::size_t row = 0; row < height; ++row)
            if (const cudaError_t error = each_row(static_cast<unsigned char*>(destination) + row * destination_pitch,
                                                   static_cast<const unsigned char*>(source) + row * source_pitch);
                error != cudaSuccess)
                return error;
        return cudaSuccess;
    };
    const auto check = [=] {
        if (height > 1 && (width > destination_pitch || width > source_pitch))
            return record_error(cudaErrorInvalidPitchValue, "cudaMemcpy2DAsync: width is larger than a pitch");
        return rows([=](void* to, const void* from) { return check_copy("cudaMemcpy2DAsync", to, from, width, kind); });
    };
    return checked_submit(stream, "cudaMemcpy2DAsync", check, [=] {
        return rows([=](void* to, const void* from) { return copy("cudaMemcpy2DAsync", to, from, width, kind); });
    });
}

// A __constant__ variable is an ordinary global here: the copy is host to host.
cudaError_t cudaMemcpyToSymbol(const void* symbol, const void* source, std::size_t bytes, std::size_t offset,
                               cudaMemcpyKind) {
    void* destination = static_cast<unsigned char*>(const_cast<void*>(symbol)) + offset;
    return ladon::emu::detail::submit(nullptr, [=] {
        return ladon::emu::detail::copy("cudaMemcpyToSymbol", destination, source, bytes, cudaMemcpyHostToHost);
    });
}

cudaError_t cudaMemcpyFromSymbol(void* destination, const void* symbol, std::size_t bytes, std::size_t offset,
                                 cudaMemcpyKind) {
    const void* source = static_cast<const unsigned char*>(symbol) + offset;
    return ladon::emu::detail::submit(nullptr, [=] {
        return ladon::emu::detail::copy("cudaMemcpyFromSymbol", destination, source, bytes, cudaMemcpyHostToHost);
    });
}

static cudaError_t fill_on(cudaStream_t stream, const char* call, void* device_pointer, int value,
                           std::size_t bytes) {
    using namespace ladon::emu::detail;
    return checked_submit(
        stream, call, [=] { return check_fill(call, device_pointer, bytes); },
        [=] { return fill(call, device_pointer, value, bytes); });
}

cudaError_t cudaMemset(void* device_pointer, int value, std::size_t bytes) {
    return fill_on(nullptr, "cudaMemset", device_pointer, value, bytes);
}

cudaError_t cudaMemsetAsync(void* device_pointer, int value, std::size_t bytes, cudaStream_t stream) {
    return fill_on(stream, "cudaMemsetAsync", device_pointer, value, bytes);
}
