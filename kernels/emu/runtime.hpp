#pragma once
// The CUDA runtime calls the CUDA backend uses, declared by CUDA's own
// cuda_runtime.h (keywords.hpp) and defined in runtime.cpp and errors.cpp:
//   errors   cudaGetLastError, cudaPeekAtLastError, cudaGetErrorString, cudaGetErrorName
//   device   cudaGetDeviceCount, cudaSetDevice, cudaGetDevice, cudaGetDeviceProperties,
//            cudaDeviceSynchronize, cudaMemGetInfo, cudaFuncSetAttribute (grid.cpp)
//   memory   cudaMalloc, cudaFree, cudaMallocHost, cudaFreeHost, cudaMemcpy(Async), cudaMemcpy2DAsync,
//            cudaMemset(Async), cudaMemcpyToSymbol, cudaMemcpyFromSymbol
//   streams  cudaStreamCreate(WithFlags), cudaStreamDestroy, cudaStreamSynchronize,
//            cudaStreamQuery, cudaStreamWaitEvent
//   events   cudaEventCreate(WithFlags), cudaEventRecord, cudaEventSynchronize,
//            cudaEventQuery, cudaEventElapsedTime, cudaEventDestroy
//   graphs   cudaStreamBeginCapture, cudaStreamEndCapture, cudaStreamIsCapturing,
//            cudaGraphInstantiate, cudaGraphLaunch, cudaGraphExecDestroy, cudaGraphDestroy
// One emulated device, 0. A call outside this list fails to link.
//
// Differences from a GPU, all deliberate:
// - Work on a created stream (launches, async copies and memsets, graph
//   launches, event records) is queued and runs, in order, only when
//   something waits for it: cudaStreamSynchronize/Query, an event recorded
//   after it being waited for (cudaStreamWaitEvent, cudaEventSynchronize),
//   cudaDeviceSynchronize, or work on the legacy default stream (blocking
//   streams only). Work on the default stream runs at once. A missing
//   dependency between streams so gives wrong results (or poison), as it
//   might on a GPU, instead of passing by luck. Argument errors are still
//   returned by the call; kernel faults of queued work by synchronising calls.
// - Stream capture records kernel launches, async copies and memsets (their
//   arguments as captured, pointers read when the graph runs, as on a GPU);
//   a synchronising call on a capturing stream fails with
//   cudaErrorStreamCaptureUnsupported and invalidates the capture, and events
//   are not captured. cudaGraphLaunch queues the recording on its stream.
// - Only cudaFuncAttributeMaxDynamicSharedMemorySize has an effect (it raises
//   the dynamic shared memory a kernel's launch may ask for above 48 KiB).
// - __constant__ variables are ordinary globals that cudaMemcpyToSymbol
//   copies into (bounded by the variable's size when it is passed by name).
// - Device memory is host memory (aligned to 256 bytes like cudaMalloc's, and
//   filled with the poison pattern so a read before a write shows as NaN);
//   the device side of a copy or memset must lie inside one cudaMalloc
//   allocation, else cudaErrorInvalidValue (a GPU would fault later).
// - A kernel fault (deadlock, misused warp intrinsic, exception) is reported
//   by the launch and by cudaGetLastError as cudaErrorLaunchFailure, and by
//   every synchronising call (cudaDeviceSynchronize, cudaStreamSynchronize,
//   cudaEventSynchronize, cudaMemcpy) until cudaGetLastError reads it. Unlike
//   a GPU the error does not poison the process for good, so one failing test
//   does not fail the rest. ladon::emu::last_error_message() says which
//   kernel, block and thread.
#include <cstddef>
#include <functional>
#include <string>

#include "kernels/emu/keywords.hpp"

namespace ladon::emu::detail {

// Records a failure for cudaGetLastError and last_error_message(); returns
// `error` so a call can `return record_error(...)`.
cudaError_t record_error(cudaError_t error, std::string message);
// A kernel fault: also reported by synchronising calls until read.
cudaError_t record_kernel_fault(std::string message);
// cudaErrorLaunchFailure while a kernel fault is unread, else cudaSuccess.
cudaError_t pending_kernel_fault();
// Whether [address, address + bytes) lies inside one cudaMalloc or
// cudaMallocHost allocation: memory a kernel may address.
bool is_global_memory(const void* address, std::size_t bytes);
// A kernel's pointer argument number `index` (from 0): null, or inside (or
// one past) a cudaMalloc or cudaMallocHost allocation. Anything else (a host
// pointer, freed memory) is recorded as a kernel fault naming the kernel
// and the argument, and returned: on a GPU the kernel would fault with an
// illegal address when it used it.
cudaError_t check_pointer_argument(const void* kernel, std::size_t index, const volatile void* pointer);
// The default stream or one created and not yet destroyed.
bool is_valid_stream(cudaStream_t stream);
// Work for `stream` (streams.cpp): recorded into the graph while the stream
// captures; queued on a created stream, to run when something waits for
// it; run at once on the default stream, after every blocking stream's
// queue. Returns the work's result if it ran, else cudaSuccess.
cudaError_t submit(cudaStream_t stream, std::function<cudaError_t()> work);
// Whether work for `stream` runs later (a created stream, or capturing).
bool runs_later(cudaStream_t stream);

}  // namespace ladon::emu::detail

// The C++ overloads cuda_runtime.h declares only for nvcc: a kernel (not its
// address) for the attribute, a __constant__ variable by reference (whose
// size bounds the copy here).
template <typename Kernel>
cudaError_t cudaFuncSetAttribute(Kernel* kernel, cudaFuncAttribute attribute, int value) {
    return cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attribute, value);
}
template <typename Symbol>
cudaError_t cudaMemcpyToSymbol(const Symbol& symbol, const void* source, std::size_t bytes, std::size_t offset = 0,
                               cudaMemcpyKind kind = cudaMemcpyHostToDevice) {
    if (offset > sizeof(Symbol) || bytes > sizeof(Symbol) - offset)
        return ladon::emu::detail::record_error(cudaErrorInvalidValue, "cudaMemcpyToSymbol: past the symbol's end");
    return cudaMemcpyToSymbol(static_cast<const void*>(&symbol), source, bytes, offset, kind);
}
template <typename Symbol>
cudaError_t cudaMemcpyFromSymbol(void* destination, const Symbol& symbol, std::size_t bytes, std::size_t offset = 0,
                                 cudaMemcpyKind kind = cudaMemcpyDeviceToHost) {
    if (offset > sizeof(Symbol) || bytes > sizeof(Symbol) - offset)
        return ladon::emu::detail::record_error(cudaErrorInvalidValue, "cudaMemcpyFromSymbol: past the symbol's end");
    return cudaMemcpyFromSymbol(destination, static_cast<const void*>(&symbol), bytes, offset, kind);
}

namespace ladon::emu {

// What went wrong in the most recent failed call on this thread, in words:
// for a kernel fault "kernel NAME: block (x,y,z), thread (x,y,z): ...".
// Kept until the next failure (cudaGetLastError does not clear it).
std::string last_error_message();

}  // namespace ladon::emu
