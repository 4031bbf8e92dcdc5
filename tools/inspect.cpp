// `ladon eval`, `ladon time`, `ladon info`, and device selection.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "ladon/checkpoint.hpp"
#include "ladon/communicator.hpp"
#include "ladon/config.hpp"
#include "ladon/device.hpp"
#include "ladon/error.hpp"
#include "tools/commands.hpp"

namespace ladon::tool {

void select_device(const std::string& device_text, TrainerOptions& options) {
    std::puts(choose_device(device_text, options).c_str());
}

int eval(const EvalArguments& arguments) {
    RunConfig config = read_checkpoint_config(arguments.checkpoint);
    config = with_overrides(config, arguments.overrides, arguments.checkpoint + " (config)");
    const auto data = arguments.split == "train" ? make_train_dataset(config.data) : make_test_dataset(config.data);
    if (!data) throw Error(fmt::format("{}: the run's data has no test split (data.test_inputs); use --split train",
                                       arguments.checkpoint));
    Trainer trainer(config.model, config.training);
    load_checkpoint(trainer, arguments.checkpoint);
    const auto metrics = trainer.evaluate(*data);
    std::printf("%s (step %lld) on %s, %lld samples\n", arguments.checkpoint.c_str(),
                static_cast<long long>(trainer.step()), data->name().c_str(), static_cast<long long>(data->size()));
    for (const auto& m : metrics) {
        std::string line = fmt::format("  {:<12} loss {:.4f}  {} {:.4f}", m.task, m.loss, m.metric, m.value);
        for (const auto& [name, value] : m.extra) line += fmt::format("  {} {:.4f}", name, value);
        std::puts(line.c_str());
    }
    return 0;
}

namespace {

// The step by kernel family (the layers' op, then the fused loss, the
// optimizer and what no kernel accounts for), largest first, each as ms and as a share of the step. An
// activation fused into its producer's kernels (CUDA) shows its backward
// only; its forward time is its producer's.
void print_family_breakdown(const StepTimingReport& report) {
    std::map<std::string, std::pair<double, double>> families;  // op -> forward, backward ms
    for (const auto& layer : report.layers) {
        families[layer.op].first += layer.forward_ms;
        families[layer.op].second += layer.backward_ms;
    }
    std::vector<std::pair<std::string, std::pair<double, double>>> rows(families.begin(), families.end());
    rows.push_back({"loss (fused)", {report.loss_ms, 0.0}});
    rows.push_back({"optimizer", {report.update_ms, 0.0}});
    // The rest of the step: batch copies, synchronisation, launch gaps.
    double attributed = 0.0;
    for (const auto& row : rows) attributed += row.second.first + row.second.second;
    rows.push_back({"rest of the step", {std::max(0.0, report.step_ms - attributed), 0.0}});
    std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
        return a.second.first + a.second.second > b.second.first + b.second.second;
    });
    std::printf("by op family:\n%-22s %12s %12s %12s %8s\n", "family", "forward ms", "backward ms", "total ms",
                "of step");
    for (const auto& [family, ms] : rows) {
        const double total = ms.first + ms.second;
        std::printf("%-22s %12.3f %12.3f %12.3f %7.1f%%\n", family.c_str(), ms.first, ms.second, total,
                    report.step_ms > 0 ? 100.0 * total / report.step_ms : 0.0);
    }
}

}  // namespace

int time(const TimeArguments& arguments) {
    RunConfig config = arguments.config.empty()
                           ? with_overrides(default_run_config(), arguments.overrides, "default config")
                           : load_run_config(arguments.config, arguments.overrides);
    if (!arguments.device.empty()) config.run.device = arguments.device;
    select_device(config.run.device, config.training);
    auto data = make_test_dataset(config.data);
    if (!data) data = make_train_dataset(config.data);
    Trainer trainer(config.model, config.training);
    const StepTimingReport report = trainer.time_steps(*data, arguments.iterations);
    std::printf("ladon time: batch %lld, %d iterations, %s backend, %d threads\n",
                static_cast<long long>(report.batch), arguments.iterations, trainer.backend_name().c_str(),
                omp_get_max_threads());
    std::printf("%-22s %-12s %-10s %12s %12s\n", "layer", "op", "head", "forward ms", "backward ms");
    double forward = 0, backward = 0;
    for (const auto& layer : report.layers) {
        std::printf("%-22s %-12s %-10s %12.3f %12.3f\n", layer.name.c_str(), layer.op.c_str(),
                    layer.head.empty() ? "-" : layer.head.c_str(), layer.forward_ms, layer.backward_ms);
        forward += layer.forward_ms;
        backward += layer.backward_ms;
    }
    std::printf("%-46s %12.3f %12.3f\n", "layers total", forward, backward);
    std::printf("fused loss %.3f ms, optimizer update %.3f ms\n", report.loss_ms, report.update_ms);
    std::printf("step %.3f ms = %.0f samples/s\n", report.step_ms,
                report.step_ms > 0 ? double(report.batch) * 1000.0 / report.step_ms : 0.0);
    print_family_breakdown(report);
    return 0;
}

int info() {
    std::printf("ladon 0.1.0\n");
    std::printf("backends: cpu (OpenMP, %d threads; OpenBLAS GEMM)", omp_get_max_threads());
    const CudaAvailability cuda = cuda_availability();
    std::printf(cuda.compiled ? ", cuda (hand-written kernels; built for sm_90)\n" : "\n");
    std::printf("devices:\n  cpu\n");
    for (const CudaDevice& device : cuda.devices)
        std::printf("  cuda:%d  %s, %.1f GiB, compute capability %d.%d\n", device.index, device.name.c_str(),
                    double(device.memory_bytes) / (1024.0 * 1024.0 * 1024.0), device.major, device.minor);
    if (cuda.devices.empty()) std::printf("  (no cuda: %s)\n", cuda.reason.c_str());
    // training.precision = "auto" (the default) resolves per backend.
    std::printf("precision: cpu fp32%s (training.precision: auto, fp32, tf32 or bf16)\n",
                cuda.compiled ? "; cuda tf32 by default: convolutions and dense layers on the tensor cores" : "");
    if (!mpi_available())
        std::printf("distributed: one process (built without MPI)\n");
    else if (nccl_available())
        std::printf("distributed: MPI, NCCL on GPUs (mpirun -np N ladon train: data parallel)\n");
    else
        std::printf("distributed: MPI (mpirun -np N ladon train: data parallel; GPUs through host memory: %s)\n",
                    nccl_unavailable_reason().c_str());
    return 0;
}

}  // namespace ladon::tool
