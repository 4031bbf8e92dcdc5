#pragma once
// Owners of the CUDA runtime's resources: device and pinned host memory, a
// stream, an event, a captured graph and its executable form. Each is
// move-only and releases what it holds when it goes; a failed create throws
// ladon::Error naming the call (or the caller's `what`) and the CUDA error.
//
// Host code only (the executor, tests, bench), compiled by g++ against the
// emulator (LADON_EMU) or the runtime (LADON_CUDA_HOST), or by nvcc. A
// destructor cannot report a failed release, and it leaves the runtime's last
// error as it is: clearing it could hide a kernel fault its owner has not read.
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kernels/cuda/device.hpp"
#include "ladon/error.hpp"

namespace ladon::cuda {

// "cudaErrorX: text", and on the emulator which kernel, block and thread.
inline std::string describe(cudaError_t error) {
    std::string text = std::string(cudaGetErrorName(error)) + ": " + cudaGetErrorString(error);
#if defined(LADON_EMU)
    if (error == cudaErrorLaunchFailure) text += " (" + ladon::emu::last_error_message() + ")";
#endif
    return text;
}

[[noreturn]] inline void fail(cudaError_t error, std::string_view what) {
    throw Error(std::string(what) + ": " + describe(error));
}

inline void check(cudaError_t error, std::string_view what) {
    if (error != cudaSuccess) fail(error, what);
}

namespace detail {

// A runtime handle (a pointer type under both runtimes) and how to release it.
template <class Handle, cudaError_t (*release)(Handle)>
class Owned {
public:
    Owned() = default;
    explicit Owned(Handle handle) : handle_(handle) {}
    Owned(Owned&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    Owned& operator=(Owned&& other) noexcept {
        if (this != &other) {
            reset();
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    Owned(const Owned&) = delete;
    Owned& operator=(const Owned&) = delete;
    ~Owned() { reset(); }

    Handle get() const { return handle_; }
    explicit operator bool() const { return handle_ != nullptr; }
    void reset() {
        if (handle_) release(std::exchange(handle_, nullptr));
    }

private:
    Handle handle_ = nullptr;
};

inline cudaError_t free_device(void* memory) { return cudaFree(memory); }
inline cudaError_t free_pinned(void* memory) { return cudaFreeHost(memory); }

}  // namespace detail

// `size` elements of device memory, uninitialised (the emulator poisons it).
// A zero-size buffer holds nullptr.
template <class T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    DeviceBuffer(DeviceBuffer&& other) noexcept
        : memory_(std::move(other.memory_)), size_(std::exchange(other.size_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
        memory_ = std::move(other.memory_);
        size_ = std::exchange(other.size_, 0);
        return *this;
    }
    explicit DeviceBuffer(std::size_t size, std::string_view what = "cudaMalloc") {
        cudaError_t error = cudaSuccess;
        *this = try_allocate(size, error);
        if (error != cudaSuccess) fail(error, what);
    }
    explicit DeviceBuffer(std::span<const T> host) : DeviceBuffer(host.size()) { upload(host); }
    explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(std::span<const T>(host)) {}

    // For callers that explain a failure themselves (how much was asked, how
    // much is free): an empty buffer and `error` set instead of a throw.
    static DeviceBuffer try_allocate(std::size_t size, cudaError_t& error) {
        // No call for zero bytes: what cudaMalloc(0) gives differs by runtime.
        void* memory = nullptr;
        error = size > 0 ? cudaMalloc(&memory, size * sizeof(T)) : cudaSuccess;
        DeviceBuffer buffer;
        if (error == cudaSuccess) {
            buffer.memory_ = Memory(memory);
            buffer.size_ = size;
        }
        return buffer;
    }

    T* get() const { return static_cast<T*>(memory_.get()); }
    std::size_t size() const { return size_; }
    std::size_t bytes() const { return size_ * sizeof(T); }

    // Synchronous copies on the legacy default stream: they wait for the work
    // launched before them there.
    void upload(std::span<const T> host) {
        if (host.size() != size_)
            throw Error("DeviceBuffer::upload: " + std::to_string(host.size()) + " elements into a buffer of " +
                        std::to_string(size_));
        if (size_ > 0) check(cudaMemcpy(get(), host.data(), bytes(), cudaMemcpyHostToDevice), "upload (cudaMemcpy)");
    }
    void upload(const std::vector<T>& host) { upload(std::span<const T>(host)); }
    std::vector<T> download() const {
        std::vector<T> host(size_);
        if (size_ > 0) check(cudaMemcpy(host.data(), get(), bytes(), cudaMemcpyDeviceToHost), "download (cudaMemcpy)");
        return host;
    }
    // Every byte set to `byte` (0 for zeros, 0xFF for float NaNs).
    void fill_bytes(int byte) {
        if (size_ > 0) check(cudaMemset(get(), byte, bytes()), "cudaMemset");
    }
    void zero() { fill_bytes(0); }

private:
    using Memory = detail::Owned<void*, detail::free_device>;
    Memory memory_;
    std::size_t size_ = 0;
};

// `size` elements of page-locked host memory, which asynchronous copies need
// to overlap the host. Uninitialised; a zero-size buffer holds nullptr.
template <class T>
class PinnedBuffer {
public:
    PinnedBuffer() = default;
    PinnedBuffer(PinnedBuffer&& other) noexcept
        : memory_(std::move(other.memory_)), size_(std::exchange(other.size_, 0)) {}
    PinnedBuffer& operator=(PinnedBuffer&& other) noexcept {
        memory_ = std::move(other.memory_);
        size_ = std::exchange(other.size_, 0);
        return *this;
    }
    explicit PinnedBuffer(std::size_t size, std::string_view what = "cudaMallocHost") {
        void* memory = nullptr;
        check(cudaMallocHost(&memory, size * sizeof(T)), what);
        memory_ = Memory(memory);
        size_ = size;
    }

    T* get() const { return static_cast<T*>(memory_.get()); }
    std::size_t size() const { return size_; }
    std::span<T> span() const { return {get(), size_}; }

private:
    using Memory = detail::Owned<void*, detail::free_pinned>;
    Memory memory_;
    std::size_t size_ = 0;
};

// Default-constructed ones hold nothing: create them once the device is set.
class Stream : public detail::Owned<cudaStream_t, cudaStreamDestroy> {
public:
    Stream() = default;
    // cudaStreamNonBlocking: no implicit waits on the legacy default stream.
    explicit Stream(unsigned flags, std::string_view what = "cudaStreamCreateWithFlags") : Owned(create(flags, what)) {}

private:
    static cudaStream_t create(unsigned flags, std::string_view what) {
        cudaStream_t stream = nullptr;
        check(cudaStreamCreateWithFlags(&stream, flags), what);
        return stream;
    }
};

class Event : public detail::Owned<cudaEvent_t, cudaEventDestroy> {
public:
    Event() = default;
    // cudaEventDisableTiming where the event only orders work.
    explicit Event(unsigned flags, std::string_view what = "cudaEventCreateWithFlags") : Owned(create(flags, what)) {}

private:
    static cudaEvent_t create(unsigned flags, std::string_view what) {
        cudaEvent_t event = nullptr;
        check(cudaEventCreateWithFlags(&event, flags), what);
        return event;
    }
};

// A captured graph (what cudaStreamEndCapture returns), owned.
using Graph = detail::Owned<cudaGraph_t, cudaGraphDestroy>;

// A graph instantiated to launch; empty until instantiate().
class GraphExec : public detail::Owned<cudaGraphExec_t, cudaGraphExecDestroy> {
public:
    GraphExec() = default;
    static GraphExec instantiate(const Graph& graph, std::string_view what = "cudaGraphInstantiate") {
        cudaGraphExec_t exec = nullptr;
        check(cudaGraphInstantiate(&exec, graph.get(), 0), what);
        return GraphExec(exec);
    }

private:
    explicit GraphExec(cudaGraphExec_t exec) : Owned(exec) {}
};

// Captures what is enqueued on `stream` between construction and end(). A
// capture left without end() (an exception while enqueueing) is ended and
// its partial graph dropped, so the stream can be used again; the error
// that ending records is cleared, as it belongs to the abandoned capture.
class StreamCapture {
public:
    explicit StreamCapture(cudaStream_t stream, std::string_view what = "cudaStreamBeginCapture") : stream_(stream) {
        check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), what);
    }
    StreamCapture(const StreamCapture&) = delete;
    StreamCapture& operator=(const StreamCapture&) = delete;
    ~StreamCapture() {
        if (!stream_) return;
        cudaGraph_t partial = nullptr;
        cudaStreamEndCapture(stream_, &partial);
        if (partial) cudaGraphDestroy(partial);
        cudaGetLastError();
    }

    Graph end(std::string_view what = "cudaStreamEndCapture") {
        cudaGraph_t graph = nullptr;
        const cudaError_t error = cudaStreamEndCapture(std::exchange(stream_, nullptr), &graph);
        Graph owned(graph);
        check(error, what);
        return owned;
    }

private:
    cudaStream_t stream_;
};

}  // namespace ladon::cuda
