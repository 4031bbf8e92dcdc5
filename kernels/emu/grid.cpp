// Launching a grid: check the configuration against CUDA's limits, run the
// blocks on the worker pool, report a fault in CUDA's error model and in words.
#include "kernels/emu/grid.hpp"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "kernels/emu/block.hpp"
#include "kernels/emu/launch_bounds.hpp"
#include "kernels/emu/symbol_name.hpp"
#include "kernels/emu/tsan.hpp"
#include "kernels/emu/worker_pool.hpp"

namespace ladon::emu {
namespace {

constexpr int default_workers = 2;
constexpr int max_workers = 256;

#if defined(LADON_EMU_PLAIN_STATIC_SHARED)
// Static shared arrays are plain globals in this build: one block at a time.
constexpr bool single_worker_only = true;
#else
constexpr bool single_worker_only = false;
#endif

int workers_from_environment() {
    const char* text = std::getenv("LADON_EMU_WORKERS");
    if (text == nullptr) return default_workers;
    char* end = nullptr;
    const long workers = std::strtol(text, &end, 10);
    if (end == text || *end != '\0' || workers < 1 || workers > max_workers) {
        std::fprintf(stderr, "ladon emulator: ignoring LADON_EMU_WORKERS=%s (expected 1 to %d)\n", text, max_workers);
        return default_workers;
    }
    return static_cast<int>(workers);
}

FiberOrder order_from_environment() {
    const char* text = std::getenv("LADON_EMU_REVERSE");
    return text != nullptr && std::string(text) == "1" ? FiberOrder::reverse : FiberOrder::forward;
}

// The emulated device's launch state. Launches are serialised (streams are
// immediate anyway), which also keeps plain-static shared memory to one block.
struct Launcher {
    std::mutex mutex;
    int workers = single_worker_only ? 1 : workers_from_environment();
    FiberOrder order = order_from_environment();
    std::unique_ptr<detail::WorkerPool> pool;               // made at the first launch
    std::map<const void*, std::size_t> max_dynamic_shared;  // cudaFuncSetAttribute
};

Launcher& launcher() {
    static Launcher instance;
    return instance;
}

cudaError_t check_configuration(const GridLaunch& launch, std::size_t max_dynamic_shared) {
    const dim3 grid = launch.grid, block = launch.block;
    // Names the kernel only on failure: the symbol lookup reads the binary.
    const auto fail = [&](cudaError_t error, const std::string& why) {
        return detail::record_error(error, "launch of " + detail::function_name(launch.kernel) + " with grid " +
                                               detail::coordinates({grid.x, grid.y, grid.z}) + ", block " +
                                               detail::coordinates({block.x, block.y, block.z}) + ": " + why);
    };
    const std::uint64_t threads = std::uint64_t{block.x} * block.y * block.z;
    if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > 1024 || block.y > 1024 || block.z > 64 ||
        threads > detail::max_threads_per_block)
        return fail(cudaErrorInvalidConfiguration, "a block holds at most 1024 threads, (1024,1024,64) per dimension");
    // A GPU refuses a block above the kernel's own maximum (its
    // __launch_bounds__ here), with "too many resources requested for launch".
    if (const unsigned bound = detail::launch_bound(launch.kernel); bound != 0 && threads > bound)
        return fail(cudaErrorLaunchOutOfResources, std::to_string(threads) +
                                                       " threads per block exceed the kernel's __launch_bounds__ of " +
                                                       std::to_string(bound));
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
        return fail(cudaErrorInvalidConfiguration, "grid dimensions must be from 1 to (2^31-1, 65535, 65535)");
    if (launch.shared_bytes > max_dynamic_shared)
        return fail(cudaErrorInvalidValue,
                    std::to_string(launch.shared_bytes) + " bytes of dynamic shared memory exceed the " +
                        std::to_string(max_dynamic_shared) + " allowed (cudaFuncSetAttribute raises it)");
    if (!detail::is_valid_stream(launch.stream)) return fail(cudaErrorInvalidResourceHandle, "unknown stream");
    return cudaSuccess;
}

// The kernel's cudaFuncAttributeMaxDynamicSharedMemorySize, if set (under state.mutex).
std::optional<std::size_t> opted_in_dynamic_shared(const Launcher& state, const void* kernel) {
    const auto attribute = state.max_dynamic_shared.find(kernel);
    if (attribute == state.max_dynamic_shared.end()) return std::nullopt;
    return attribute->second;
}

// The configuration checks, under state.mutex.
cudaError_t check_launch(const Launcher& state, const GridLaunch& launch) {
    return check_configuration(launch, opted_in_dynamic_shared(state, launch.kernel)
                                           .value_or(detail::default_max_dynamic_shared_bytes));
}

}  // namespace

cudaError_t check_launch(const GridLaunch& launch) {
    Launcher& state = launcher();
    std::lock_guard lock(state.mutex);
    return check_launch(state, launch);
}

cudaError_t launch_grid(const GridLaunch& launch) {
    if (detail::inside_kernel())
        return detail::record_error(cudaErrorNotSupported,
                                    "launch of " + detail::function_name(launch.kernel) +
                                        " from inside a kernel: the emulator has no dynamic parallelism");
    Launcher& state = launcher();
    std::unique_lock lock(state.mutex);
    if (const cudaError_t error = check_launch(state, launch); error != cudaSuccess) return error;
    if (!state.pool || state.pool->size() != state.workers)
        state.pool = std::make_unique<detail::WorkerPool>(state.workers);
    std::optional<std::string> fault =
        state.pool->run(launch, state.order, opted_in_dynamic_shared(state, launch.kernel).value_or(0));
    detail::tsan::acquire(detail::tsan::launch_end_object());  // the grid's work happened before what follows
    lock.unlock();
    if (!fault) return cudaSuccess;
    std::string message = "kernel " + detail::function_name(launch.kernel) + ": " + *fault;
    // A GPU would hang or print a device-side assertion: say it in the log too.
    std::fprintf(stderr, "ladon emulator: %s\n", message.c_str());
    return detail::record_kernel_fault(std::move(message));
}

void set_worker_count(int workers) {
    if (workers < 1 || workers > max_workers) {
        std::fprintf(stderr, "ladon emulator: set_worker_count(%d) ignored (expected 1 to %d)\n", workers, max_workers);
        return;
    }
    std::lock_guard lock(launcher().mutex);
    launcher().workers = single_worker_only ? 1 : workers;
}

int worker_count() {
    std::lock_guard lock(launcher().mutex);
    return launcher().workers;
}

void set_fiber_order(FiberOrder order) {
    std::lock_guard lock(launcher().mutex);
    launcher().order = order;
}

FiberOrder fiber_order() {
    std::lock_guard lock(launcher().mutex);
    return launcher().order;
}

}  // namespace ladon::emu

// Declared by CUDA (with a template overload taking the kernel itself).
cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attribute, int value) {
    using namespace ladon::emu;
    if (kernel == nullptr)
        return detail::record_error(cudaErrorInvalidDeviceFunction, "cudaFuncSetAttribute: null kernel");
    if (attribute != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
    if (value < 0 || static_cast<std::size_t>(value) > detail::max_dynamic_shared_bytes_optin)
        return detail::record_error(cudaErrorInvalidValue, "cudaFuncSetAttribute: " + std::to_string(value) +
                                                               " bytes of dynamic shared memory exceed the device's " +
                                                               std::to_string(detail::max_dynamic_shared_bytes_optin));
    std::lock_guard lock(launcher().mutex);
    launcher().max_dynamic_shared[kernel] = static_cast<std::size_t>(value);
    return cudaSuccess;
}
