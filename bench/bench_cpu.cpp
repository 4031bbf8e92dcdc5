// CPU backend benchmarks: the conv and dense layers of examples/fashion_mtl.toml
// and a whole training step (forward, fused loss, backward, update) of that
// model on every backend present (bench/compare puts PyTorch beside it).
// GFLOP/s and samples/s counters; the CUDA kernels against cuDNN and cuBLAS
// are in bench_kernels.cpp.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "engine/executor.hpp"
#include "kernels/ops.hpp"
#include "ladon/config.hpp"
#include "ladon/device.hpp"

namespace {

std::vector<float> filled(std::size_t n, float value = 0.01f) { return std::vector<float>(n, value); }

// Fashion-mtl's three convolutions at batch 128: {in_channels, size, out_channels}.
ladon::ops::Conv2dShape conv_shape(const benchmark::State& state) {
    ladon::ops::Conv2dShape s;
    s.batch = state.range(0);
    s.in_channels = state.range(1);
    s.in_height = s.in_width = state.range(2);
    s.out_channels = state.range(3);
    s.kernel_height = s.kernel_width = 3;
    s.pad_height = s.pad_width = 1;
    return s;
}

double conv_flops(const ladon::ops::Conv2dShape& s) {
    return 2.0 * double(s.output_size()) * double(s.in_channels * s.kernel_height * s.kernel_width);
}

void conv_args(benchmark::internal::Benchmark* b) {
    b->Args({128, 1, 40, 32})->Args({128, 32, 20, 64})->Args({128, 64, 10, 128})->Unit(benchmark::kMillisecond);
}

void BM_conv2d_forward(benchmark::State& state) {
    const auto s = conv_shape(state);
    auto x = filled(s.input_size()), w = filled(s.weight_size()), b = filled(s.out_channels), y = filled(s.output_size());
    auto ws = filled(ladon::cpu::conv2d_workspace_floats(s, omp_get_max_threads()));
    for (auto _ : state) ladon::cpu::conv2d_forward(s, x.data(), w.data(), b.data(), y.data(), ws.data());
    state.counters["GFLOP/s"] = benchmark::Counter(conv_flops(s) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_conv2d_forward)->Apply(conv_args);

void BM_conv2d_backward_data(benchmark::State& state) {
    const auto s = conv_shape(state);
    auto gx = filled(s.input_size()), w = filled(s.weight_size()), gy = filled(s.output_size());
    auto ws = filled(ladon::cpu::conv2d_workspace_floats(s, omp_get_max_threads()));
    for (auto _ : state) ladon::cpu::conv2d_backward_data(s, w.data(), gy.data(), gx.data(), ws.data());
    state.counters["GFLOP/s"] = benchmark::Counter(conv_flops(s) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_conv2d_backward_data)->Apply(conv_args);

void BM_conv2d_backward_filter(benchmark::State& state) {
    const auto s = conv_shape(state);
    auto x = filled(s.input_size()), gw = filled(s.weight_size()), gb = filled(s.out_channels),
         gy = filled(s.output_size());
    auto ws = filled(ladon::cpu::conv2d_workspace_floats(s, omp_get_max_threads()));
    for (auto _ : state) ladon::cpu::conv2d_backward_filter(s, x.data(), gy.data(), gw.data(), gb.data(), ws.data());
    state.counters["GFLOP/s"] = benchmark::Counter(conv_flops(s) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_conv2d_backward_filter)->Apply(conv_args);

void BM_dense_forward(benchmark::State& state) {
    const ladon::ops::DenseShape s{state.range(0), state.range(1), state.range(2)};
    auto x = filled(s.batch * s.in_features), w = filled(s.in_features * s.out_features), b = filled(s.out_features),
         y = filled(s.batch * s.out_features);
    for (auto _ : state) ladon::cpu::dense_forward(s, x.data(), w.data(), b.data(), y.data());
    state.counters["GFLOP/s"] = benchmark::Counter(2.0 * s.batch * s.in_features * s.out_features * 1e-9,
                                                   benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_dense_forward)->Args({128, 3200, 256})->Unit(benchmark::kMillisecond);

// One whole training step (forward, fused loss, backward, update) of a model
// config on constant data at batch state.range(0), through the executor's
// train_step as the trainer runs it: on the CPU backend, and where a GPU is,
// on the CUDA backend with and without CUDA-graph replay (the step then waits
// for the GPU once, at its end, so wall time is the step's time). The
// figures bench/compare puts beside PyTorch's.
enum class StepBackend { cpu, cuda, cuda_graphs };

void training_step(benchmark::State& state, const std::string& config_path, StepBackend backend) {
    const auto config = ladon::load_run_config(config_path);
    using ladon::engine::BackendChoice;
    const BackendChoice choice{backend == StepBackend::cpu ? ladon::Backend::cpu : ladon::Backend::cuda, 0};
    auto executor_owner = ladon::engine::make_executor(
        ladon::engine::build_graph(config.model, state.range(0)),
        {1, config.training.optimizer.kind, ladon::TaskWeighting::fixed, backend == StepBackend::cuda_graphs}, choice);
    ladon::engine::Executor& executor = *executor_owner;
    const int64_t batch = executor.batch();
    // Inputs 0.5, targets 0 (class 0), every row labelled.
    ladon::engine::Batch data(executor.batch_layout(), executor.batch_memory());
    std::fill(data.input().begin(), data.input().end(), 0.5f);
    // Warm-up outside the timing: the first CUDA step runs plain, the second
    // captures the graph that later steps replay.
    for (int i = 0; i < 2; ++i) executor.train_step(data, config.training.optimizer, 1e-3f);
    for (auto _ : state) executor.train_step(data, config.training.optimizer, 1e-3f);
    state.counters["samples/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["threads"] = omp_get_max_threads();
    const auto plan = executor.memory_plan();
    state.counters["plan_MiB"] = double(plan.parameters + plan.gradients + plan.optimizer_state + plan.activations +
                                        plan.workspace) / (1024.0 * 1024.0);
}

void register_training_steps() {
    const std::vector<std::pair<std::string, std::string>> models{
        {"fashion_mtl", "examples/fashion_mtl.toml"}, {"seed_article", "bench/models/seed_article.toml"}};
    std::vector<std::pair<std::string, StepBackend>> backends{{"cpu", StepBackend::cpu}};
    const ladon::CudaAvailability cuda = ladon::cuda_availability();
    if (!cuda.devices.empty()) {
        backends.push_back({"cuda", StepBackend::cuda});
        backends.push_back({"cuda_graphs", StepBackend::cuda_graphs});
    } else {
        std::fprintf(stderr, "training_step: CUDA rows not run: %s\n",
                     cuda.compiled ? cuda.reason.c_str() : "this build has no CUDA backend");
    }
    const auto add = [](const std::string& model, const std::string& path, const std::string& name,
                        StepBackend backend) {
        benchmark::RegisterBenchmark(("training_step/" + model + "/" + name).c_str(), training_step, path, backend)
            ->Arg(128)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
    };
    for (const auto& [model, path] : models)
        for (const auto& [name, backend] : backends) add(model, path, name, backend);
    // ResNet-18 at 224 x 224 (about 1.4 TFLOP and GiBs of activations a step at batch
    // 128) on the GPU only.
    for (const auto& [name, backend] : backends)
        if (backend != StepBackend::cpu) add("resnet18", "bench/models/resnet18.toml", name, backend);
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    register_training_steps();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
