// make_executor: the CPU backend always; the CUDA backend where this build
// has one (LADON_HAS_CUDA_BACKEND, set by engine/CMakeLists.txt).
#include <fmt/format.h>

#include <omp.h>

#include "engine/cpu_executor.hpp"
#include "engine/executor.hpp"
#include "ladon/config.hpp"
#include "ladon/device.hpp"
#include "ladon/error.hpp"

namespace ladon::engine {

#if defined(LADON_HAS_CUDA_BACKEND)
std::unique_ptr<Executor> make_cuda_executor(Graph graph, const ExecutorOptions& options, int device);
std::vector<CudaDevice> query_cuda_devices(std::string& reason);
#endif

std::unique_ptr<Executor> make_executor(Graph graph, const ExecutorOptions& options, const BackendChoice& choice) {
    if (choice.backend == Backend::cpu) return std::make_unique<CpuExecutor>(std::move(graph), options);
#if defined(LADON_HAS_CUDA_BACKEND)
    return make_cuda_executor(std::move(graph), options, choice.device);
#else
    throw Error(fmt::format("device cuda:{}: this ladon was built without the CUDA backend (no CUDA toolkit at "
                            "configure time); use the cpu device",
                            choice.device));
#endif
}

}  // namespace ladon::engine

namespace ladon {

CudaAvailability cuda_availability() {
    CudaAvailability availability;
#if defined(LADON_HAS_CUDA_BACKEND)
    availability.compiled = true;
    availability.devices = engine::query_cuda_devices(availability.reason);
#else
    availability.reason = "this ladon was built without the CUDA backend (no CUDA toolkit at configure time)";
#endif
    return availability;
}

std::string choose_device(const std::string& text, TrainerOptions& options) {
    const Device device = parse_device(text);
    const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
    if (device.backend == Backend::cpu) {
        options.backend = Backend::cpu;
        return fmt::format("device: cpu ({} threads)", threads);
    }
    const CudaAvailability cuda = cuda_availability();
    if (!device.backend && cuda.devices.empty()) {
        options.backend = Backend::cpu;
        return fmt::format("device: {}; training on the CPU ({} threads)", cuda.reason, threads);
    }
    if (cuda.devices.empty())
        throw Error(fmt::format("device \"{}\" asked for, but {}; use --device cpu or auto", text, cuda.reason));
    if (device.index >= int(cuda.devices.size()))
        throw Error(fmt::format("device \"{}\" asked for, but this machine has {} CUDA device{} (cuda:0 to cuda:{})",
                                text, cuda.devices.size(), cuda.devices.size() == 1 ? "" : "s",
                                cuda.devices.size() - 1));
    const CudaDevice& chosen = cuda.devices[std::size_t(device.index)];
    options.backend = Backend::cuda;
    options.cuda_device = chosen.index;
    return fmt::format("device: cuda:{} ({}, {:.1f} GiB, compute capability {}.{})", chosen.index, chosen.name,
                       double(chosen.memory_bytes) / (1024.0 * 1024.0 * 1024.0), chosen.major, chosen.minor);
}

std::string choose_rank_device(const std::string& text, int ranks, int local_rank, TrainerOptions& options) {
    if (ranks <= 1) return choose_device(text, options);
    const Device device = parse_device(text);
    if (device.backend == Backend::cuda && text != "cuda")
        throw Error(
            fmt::format("device \"{}\" with {} ranks: each rank trains on the GPU of its local rank; use "
                        "--device cuda (or auto), and CUDA_VISIBLE_DEVICES to choose which GPUs",
                        text, ranks));
    if (device.backend == Backend::cpu) return choose_device(text, options);
    const CudaAvailability cuda = cuda_availability();
    if (cuda.devices.empty()) return choose_device(text, options);  // auto: the CPU; cuda: the reason why not
    const int index = local_rank % int(cuda.devices.size());
    const std::string line = choose_device(fmt::format("cuda:{}", index), options);
    return fmt::format("{} (local rank {} of {} visible GPU{})", line, local_rank, cuda.devices.size(),
                       cuda.devices.size() == 1 ? "" : "s");
}

}  // namespace ladon
