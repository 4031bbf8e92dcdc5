// CUDA's error model: the last error of each host thread, read (and cleared)
// by cudaGetLastError, plus the emulator's message saying what went wrong.
#include <string>
#include <utility>

#include "kernels/emu/runtime.hpp"

namespace ladon::emu::detail {
namespace {

struct ErrorState {
    cudaError_t last = cudaSuccess;
    bool kernel_fault_pending = false;
    std::string message;
};

// Per host thread, like CUDA's.
ErrorState& error_state() {
    thread_local ErrorState state;
    return state;
}

}  // namespace

cudaError_t record_error(cudaError_t error, std::string message) {
    ErrorState& state = error_state();
    state.last = error;
    state.message = std::move(message);
    return error;
}

cudaError_t record_kernel_fault(std::string message) {
    error_state().kernel_fault_pending = true;
    return record_error(cudaErrorLaunchFailure, std::move(message));
}

cudaError_t pending_kernel_fault() { return error_state().kernel_fault_pending ? cudaErrorLaunchFailure : cudaSuccess; }

}  // namespace ladon::emu::detail

namespace ladon::emu {

std::string last_error_message() { return detail::error_state().message; }

}  // namespace ladon::emu

cudaError_t cudaGetLastError() {
    auto& state = ladon::emu::detail::error_state();
    const cudaError_t error = state.last;
    state.last = cudaSuccess;
    state.kernel_fault_pending = false;
    return error;
}

cudaError_t cudaPeekAtLastError() { return ladon::emu::detail::error_state().last; }

namespace {

struct ErrorText {
    cudaError_t error;
    const char* name;
    const char* description;  // CUDA's own wording
};

// The errors the emulator can return, and a few a backend may test for.
constexpr ErrorText error_texts[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration", "invalid configuration argument"},
    {cudaErrorInvalidSymbol, "cudaErrorInvalidSymbol", "invalid device symbol"},
    {cudaErrorInvalidDevicePointer, "cudaErrorInvalidDevicePointer", "invalid device pointer"},
    {cudaErrorInvalidMemcpyDirection, "cudaErrorInvalidMemcpyDirection", "invalid copy direction for memcpy"},
    {cudaErrorInvalidDeviceFunction, "cudaErrorInvalidDeviceFunction", "invalid device function"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
    {cudaErrorNotReady, "cudaErrorNotReady", "device not ready"},
    {cudaErrorIllegalAddress, "cudaErrorIllegalAddress", "an illegal memory access was encountered"},
    {cudaErrorLaunchOutOfResources, "cudaErrorLaunchOutOfResources", "too many resources requested for launch"},
    {cudaErrorLaunchFailure, "cudaErrorLaunchFailure", "unspecified launch failure"},
    {cudaErrorNotSupported, "cudaErrorNotSupported", "operation not supported"},
    {cudaErrorUnknown, "cudaErrorUnknown", "unknown error"},
};

const ErrorText* find_error_text(cudaError_t error) {
    for (const ErrorText& text : error_texts)
        if (text.error == error) return &text;
    return nullptr;
}

}  // namespace

const char* cudaGetErrorString(cudaError_t error) {
    const ErrorText* text = find_error_text(error);
    return text ? text->description : "unrecognized error code";
}

const char* cudaGetErrorName(cudaError_t error) {
    const ErrorText* text = find_error_text(error);
    return text ? text->name : "unrecognized error code";
}
