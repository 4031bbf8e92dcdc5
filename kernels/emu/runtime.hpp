#pragma once
// The CUDA runtime calls the CUDA backend uses, with CUDA's names, types and
// error codes (the types come from CUDA's own driver_types.h, so codes and
// cudaDeviceProp's fields are exactly NVIDIA's). One emulated device, 0.
//
// Differences from a GPU, all deliberate:
// - Streams and events are immediate: every call has finished when it returns.
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
#include <driver_types.h>

#include <cstddef>
#include <string>

#include "kernels/emu/keywords.hpp"

cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* properties, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes);

cudaError_t cudaMalloc(void** device_pointer, std::size_t bytes);
cudaError_t cudaFree(void* device_pointer);
cudaError_t cudaMallocHost(void** host_pointer, std::size_t bytes);
cudaError_t cudaFreeHost(void* host_pointer);
cudaError_t cudaMemcpy(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* device_pointer, int value, std::size_t bytes);
cudaError_t cudaMemsetAsync(void* device_pointer, int value, std::size_t bytes, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t event);

// Only cudaFuncAttributeMaxDynamicSharedMemorySize has an effect: it raises
// the dynamic shared memory a launch of `kernel` may ask for above 48 KiB.
cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attribute, int value);
template <typename Kernel>
cudaError_t cudaFuncSetAttribute(Kernel* kernel, cudaFuncAttribute attribute, int value) {
    return cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attribute, value);
}

namespace ladon::emu::detail {
cudaError_t copy_to_symbol(void* symbol, std::size_t symbol_bytes, const void* source, std::size_t bytes,
                           std::size_t offset);
cudaError_t copy_from_symbol(void* destination, const void* symbol, std::size_t symbol_bytes, std::size_t bytes,
                             std::size_t offset);
}  // namespace ladon::emu::detail

// A __constant__ variable is an ordinary global here; the kind is ignored.
template <typename Symbol>
cudaError_t cudaMemcpyToSymbol(const Symbol& symbol, const void* source, std::size_t bytes, std::size_t offset = 0,
                               cudaMemcpyKind = cudaMemcpyHostToDevice) {
    return ladon::emu::detail::copy_to_symbol(const_cast<Symbol*>(&symbol), sizeof(Symbol), source, bytes, offset);
}
template <typename Symbol>
cudaError_t cudaMemcpyFromSymbol(void* destination, const Symbol& symbol, std::size_t bytes, std::size_t offset = 0,
                                 cudaMemcpyKind = cudaMemcpyDeviceToHost) {
    return ladon::emu::detail::copy_from_symbol(destination, &symbol, sizeof(Symbol), bytes, offset);
}

namespace ladon::emu {

// What went wrong in the most recent failed call on this thread, in words:
// for a kernel fault "kernel NAME: block (x,y,z), thread (x,y,z): ...".
// Kept until the next failure (cudaGetLastError does not clear it).
std::string last_error_message();

}  // namespace ladon::emu

namespace ladon::emu::detail {

// Records a failure for cudaGetLastError and last_error_message(); returns
// `error` so a call can `return record_error(...)`.
cudaError_t record_error(cudaError_t error, std::string message);
// A kernel fault: also reported by synchronising calls until read.
cudaError_t record_kernel_fault(std::string message);
// cudaErrorLaunchFailure while a kernel fault is unread, else cudaSuccess.
cudaError_t pending_kernel_fault();
// The default stream or one created and not yet destroyed.
bool is_valid_stream(cudaStream_t stream);

}  // namespace ladon::emu::detail
