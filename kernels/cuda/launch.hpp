#pragma once
// The one way ladon launches a kernel:
//     ladon::cuda::launch(kernel, grid, block, shared_bytes, stream, arguments...)
// Under nvcc it is `kernel<<<grid, block, shared_bytes, stream>>>(arguments...)`
// followed by cudaGetLastError(); under the emulator it runs the grid on the
// CPU and returns when it has finished. `<<< >>>` appears nowhere else, so
// every kernel source compiles with g++ too.
//
// Returns cudaSuccess or the launch's error. A configuration over the limits
// gives cudaErrorInvalidConfiguration (threads) or cudaErrorInvalidValue
// (shared memory) on both. A fault inside the kernel surfaces on a GPU at the
// next synchronising call; the emulator knows it at once and returns
// cudaErrorLaunchFailure from the launch itself (and from cudaGetLastError and
// synchronising calls until it is read; ladon::emu::last_error_message() names
// kernel, block and thread).
#include <cstddef>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kernels/cuda/device.hpp"

namespace ladon::cuda {

template <typename... Parameters, typename... Arguments>
cudaError_t launch(void (*kernel)(Parameters...), dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream,
                   Arguments&&... arguments) {
    static_assert(sizeof...(Parameters) == sizeof...(Arguments), "launch: wrong number of kernel arguments");
    static_assert((std::is_trivially_copyable_v<std::decay_t<Parameters>> && ...),
                  "kernel parameters are copied to the device: they must be trivially copyable");
#if defined(__CUDACC__)
    kernel<<<grid, block, shared_bytes, stream>>>(std::forward<Arguments>(arguments)...);
    return cudaGetLastError();
#else
    // The arguments are converted to the parameter types once, as a launch
    // does; each emulated thread then gets its own copy, as on the GPU.
    struct Call {
        void (*kernel)(Parameters...);
        std::tuple<std::decay_t<Parameters>...> arguments;
    };
    const Call call{kernel, std::tuple<std::decay_t<Parameters>...>(std::forward<Arguments>(arguments)...)};
    // A pointer argument must address device or pinned memory (or be null).
    const auto check_pointers = [&]<std::size_t... index>(std::index_sequence<index...>) {
        cudaError_t error = cudaSuccess;
        const auto check = [&](std::size_t position, const auto& argument) {
            if constexpr (std::is_pointer_v<std::decay_t<decltype(argument)>>)
                if (error == cudaSuccess)
                    error = ladon::emu::detail::check_pointer_argument(reinterpret_cast<const void*>(kernel), position,
                                                                       argument);
        };
        (check(index, std::get<index>(call.arguments)), ...);
        return error;
    };
    if (const cudaError_t error = check_pointers(std::index_sequence_for<Parameters...>{}); error != cudaSuccess)
        return error;
    const auto run_thread = [](const void* context) {
        const Call& call = *static_cast<const Call*>(context);
        std::apply(call.kernel, call.arguments);
    };
    if (ladon::emu::detail::runs_later(stream)) {
        // Queued (or captured into a graph): the launch keeps its arguments
        // to run later, and a configuration over the limits is refused now.
        auto owned = std::make_shared<const Call>(call);
        const ladon::emu::GridLaunch later{reinterpret_cast<const void*>(kernel), grid, block, shared_bytes, stream,
                                           run_thread, owned.get()};
        if (const cudaError_t error = ladon::emu::check_launch(later); error != cudaSuccess) return error;
        return ladon::emu::detail::submit(stream, [owned, later] { return ladon::emu::launch_grid(later); });
    }
    return ladon::emu::launch_grid(
        {reinterpret_cast<const void*>(kernel), grid, block, shared_bytes, stream, run_thread, &call});
#endif
}

}  // namespace ladon::cuda
