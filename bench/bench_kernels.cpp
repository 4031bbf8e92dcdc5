// Kernel microbenchmarks (issue 5): every CUDA kernel family beside cuDNN and
// cuBLAS, on the layer shapes of examples/fashion_mtl.toml and of a wider
// trunk, at batch 128 and 512; conv and dense also on ResNet-18's
// convolutions at 224 x 224 (batch 256) and on dense-heavy products (M, N, K
// >= 1024), in FP32 and on the tensor cores (TF32, BF16). Without a GPU (cudaGetDeviceCount fails or
// finds none), or when built without CUDA (LADON_BENCH_CUDA 0), the same
// program times the CPU backend's kernels on the same shapes. The first line
// of output says which backend ran.
//
// How a row is measured:
// - Each iteration times ladon's call once and then, where a baseline exists,
//   the vendor's equivalent call, one after the other on the same stream with
//   CUDA events, each behind an L2 flush (a memset of twice the L2 size), so
//   neither finds the other's data in cache. The row's time is ladon's
//   (UseManualTime); the vendor's rides along as counters: vendor_ms,
//   vendor_GFLOP/s or vendor_GB/s, and vs_vendor = vendor time / ladon time
//   (above 1: ladon is faster). Interleaving the two puts both under the same
//   clocks, temperature and neighbours, which a second row run later would not.
// - Both sides do the same work: no bias and no activation in conv and dense
//   (cuDNN's plain convolution, cuBLAS's plain SGEMM); backward passes
//   accumulate on both sides (beta = 1), as ladon's contract says. Conv and
//   dense time the vendor twice: FP32 with TF32 off (CUDNN_FMA_MATH,
//   CUBLAS_PEDANTIC_MATH: vs_vendor) and with the math PyTorch users get by
//   default (CUDNN_DEFAULT_MATH, CUBLAS_TF32_TENSOR_OP_MATH: vs_vendor_tf32).
//   cuDNN's convolution algorithm is the fastest cudnnFind*AlgorithmEx
//   reports among those it ran in that math mode, with the workspace it asks
//   for; it may be one that is not deterministic (the label and
//   vendor_deterministic say), ladon's always is.
// - GFLOP/s for conv and dense (2 x multiply-adds); GB/s for the memory-bound
//   ops, counting the bytes ladon's contract must move (each input read once,
//   each output written once, an accumulated output read and written). The
//   vendor's GB/s uses the same byte count, so the two compare as the times do.
// - The fused multi-head loss and the fused optimizer have no cuDNN or cuBLAS
//   counterpart: their vendor baseline is a device-to-device cudaMemcpyAsync
//   moving the same bytes (half read, half written), the runtime's own copy,
//   so vs_vendor there is the fraction of copy bandwidth reached.
// - CPU rows: wall time of each call (OpenMP threads as OMP_NUM_THREADS), with
//   GFLOP/s or GB/s and no vendor baseline.
// Errors: every CUDA, cuDNN and cuBLAS call goes through LADON_BENCH_CHECK,
// which throws with the call's name; the benchmark catches it and reports it
// with state.SkipWithError (the row prints "ERROR OCCURRED").
#include "bench/bench_kernels.hpp"

#include <omp.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "kernels/ops.hpp"

#if LADON_BENCH_CUDA
#include <cuda_runtime.h>
#endif

namespace {

using namespace ladon::bench;

// ---------------------------------------------------------------- CPU backend

double time_on_cpu(const Op& op) {
    const auto start = std::chrono::steady_clock::now();
    op();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct CpuBackend {
    int threads = omp_get_max_threads();

    Prepared with_threads(Prepared row) const {
        row.counters["threads"] = threads;
        return row;
    }

    Prepared conv2d(const Conv2dShape& s, ConvPass pass) const {
        namespace cpu = ladon::cpu;
        Prepared row;
        row.work.flops = conv_flops(s);
        const float* x = row.keep(random_floats(s.input_size(), 1)).data();
        const float* w = row.keep(random_floats(s.weight_size(), 2)).data();
        const float* gy = row.keep(random_floats(s.output_size(), 3)).data();
        float* y = row.keep(std::vector<float>(std::size_t(s.output_size()))).data();
        float* gx = row.keep(std::vector<float>(std::size_t(s.input_size()))).data();
        float* gw = row.keep(std::vector<float>(std::size_t(s.weight_size()))).data();
        float* ws = row.keep(std::vector<float>(cpu::conv2d_workspace_floats(s, threads))).data();
        if (pass == ConvPass::forward)
            row.ladon = [=] { cpu::conv2d_forward(s, x, w, nullptr, y, ws); };
        else if (pass == ConvPass::backward_data)
            row.ladon = [=] { cpu::conv2d_backward_data(s, w, gy, gx, ws); };
        else
            row.ladon = [=] { cpu::conv2d_backward_filter(s, x, gy, gw, nullptr, ws); };
        return with_threads(std::move(row));
    }

    Prepared dense(const DenseShape& s, DensePass pass) const {
        namespace cpu = ladon::cpu;
        Prepared row;
        row.work.flops = dense_flops(s);
        const float* x = row.keep(random_floats(s.batch * s.in_features, 1)).data();
        const float* w = row.keep(random_floats(s.out_features * s.in_features, 2)).data();
        const float* gy = row.keep(random_floats(s.batch * s.out_features, 3)).data();
        float* y = row.keep(std::vector<float>(std::size_t(s.batch * s.out_features))).data();
        float* gx = row.keep(std::vector<float>(std::size_t(s.batch * s.in_features))).data();
        float* gw = row.keep(std::vector<float>(std::size_t(s.out_features * s.in_features))).data();
        if (pass == DensePass::forward)
            row.ladon = [=] { cpu::dense_forward(s, x, w, nullptr, y); };
        else if (pass == DensePass::backward_data)
            row.ladon = [=] { cpu::dense_backward_data(s, w, gy, gx); };
        else
            row.ladon = [=] { cpu::dense_backward_filter(s, x, gy, gw, nullptr); };
        return with_threads(std::move(row));
    }

    Prepared pool(const Pool2dShape& s, PoolPass pass) const {
        namespace cpu = ladon::cpu;
        Prepared row;
        row.work.bytes = pool_bytes(s, pass);
        const float* x = row.keep(random_floats(s.input_size(), 1)).data();
        const float* gy = row.keep(random_floats(s.output_size(), 3)).data();
        float* y = row.keep(std::vector<float>(std::size_t(s.output_size()))).data();
        float* gx = row.keep(std::vector<float>(std::size_t(s.input_size()))).data();
        int32_t* argmax = row.keep(std::vector<int32_t>(std::size_t(s.output_size()))).data();
        cpu::max_pool2d_forward(s, x, y, argmax);  // the argmax the backward pass reads
        switch (pass) {
            case PoolPass::max_forward:
                row.ladon = [=] { cpu::max_pool2d_forward(s, x, y, argmax); };
                break;
            case PoolPass::max_backward:
                row.ladon = [=] { cpu::max_pool2d_backward(s, gy, argmax, gx); };
                break;
            case PoolPass::average_forward:
                row.ladon = [=] { cpu::avg_pool2d_forward(s, x, y); };
                break;
            case PoolPass::average_backward:
                row.ladon = [=] { cpu::avg_pool2d_backward(s, gy, gx); };
                break;
        }
        return with_threads(std::move(row));
    }

    Prepared batch_norm(const BatchNormShape& s, BatchNormPass pass) const {
        namespace cpu = ladon::cpu;
        Prepared row;
        row.work.bytes = batch_norm_bytes(s, pass);
        const int64_t elements = s.batch * s.channels * s.spatial;
        const float* x = row.keep(random_floats(elements, 1)).data();
        const float* gy = row.keep(random_floats(elements, 3)).data();
        const float* gamma = row.keep(random_floats(s.channels, 4, 0.5f, 1.5f)).data();
        const float* beta = row.keep(random_floats(s.channels, 5)).data();
        float* y = row.keep(std::vector<float>(std::size_t(elements))).data();
        float* gx = row.keep(std::vector<float>(std::size_t(elements))).data();
        const auto per_channel = [&](float value) {
            return row.keep(std::vector<float>(std::size_t(s.channels), value)).data();
        };
        float *mean = per_channel(0.0f), *inv_std = per_channel(1.0f), *running_mean = per_channel(0.0f),
              *running_var = per_channel(1.0f), *grad_gamma = per_channel(0.0f), *grad_beta = per_channel(0.0f);
        cpu::batch_norm_forward_training(s, x, gamma, beta, y, mean, inv_std, running_mean, running_var);
        if (pass == BatchNormPass::forward_training)
            row.ladon = [=] {
                cpu::batch_norm_forward_training(s, x, gamma, beta, y, mean, inv_std, running_mean, running_var);
            };
        else
            row.ladon = [=] { cpu::batch_norm_backward(s, x, gy, gamma, mean, inv_std, gx, grad_gamma, grad_beta); };
        return with_threads(std::move(row));
    }

    Prepared gating(const FeatureMap& map, int64_t batch, GatingPass pass) const {
        namespace cpu = ladon::cpu;
        Prepared row;
        row.work.bytes = gating_bytes(map, batch, pass);
        const int64_t planes = batch * map.channels, spatial = map.size * map.size, count = planes * spatial;
        const float* x = row.keep(random_floats(count, 1)).data();
        const float* gy = row.keep(random_floats(count, 3)).data();
        const float* gate = row.keep(random_floats(planes, 4)).data();
        const float* gate_gy = row.keep(random_floats(planes, 5)).data();
        float* y = row.keep(std::vector<float>(std::size_t(count))).data();
        float* gx = row.keep(std::vector<float>(std::size_t(count))).data();
        float* gate_gx = row.keep(std::vector<float>(std::size_t(planes))).data();
        switch (pass) {
            case GatingPass::softmax_forward:
                row.ladon = [=] { cpu::softmax_forward(batch, map.channels, spatial, x, y); };
                break;
            case GatingPass::softmax_backward:
                cpu::softmax_forward(batch, map.channels, spatial, x, y);  // the y backward reads
                row.ladon = [=] { cpu::softmax_backward(batch, map.channels, spatial, y, gy, gx); };
                break;
            case GatingPass::global_avg_pool_forward:
                row.ladon = [=] { cpu::global_avg_pool_forward(planes, spatial, x, gate_gx); };
                break;
            case GatingPass::global_avg_pool_backward:
                row.ladon = [=] { cpu::global_avg_pool_backward(planes, spatial, gate_gy, gx); };
                break;
            case GatingPass::multiply_forward:
                row.ladon = [=] { cpu::multiply_forward(planes, spatial, gate, x, y); };
                break;
            case GatingPass::multiply_backward:
                row.ladon = [=] { cpu::multiply_backward(planes, spatial, gate, x, gy, gate_gx, gx); };
                break;
        }
        return with_threads(std::move(row));
    }

    Prepared mixture(const MixtureLayer& layer, int64_t batch, MixturePass pass) const {
        namespace cpu = ladon::cpu;
        Prepared row;
        row.work.bytes = mixture_bytes(layer, batch, pass);
        const int64_t count = batch * layer.features;
        const float* gate = row.keep(random_floats(batch * layer.experts, 1, 0.0f, 1.0f)).data();
        const float* gy = row.keep(random_floats(count, 2)).data();
        float* y = row.keep(std::vector<float>(std::size_t(count))).data();
        float* grad_gate = row.keep(std::vector<float>(std::size_t(batch * layer.experts))).data();
        auto& experts = row.keep(std::vector<const float*>());
        auto& grads = row.keep(std::vector<float*>());
        for (int64_t e = 0; e < layer.experts; ++e) {
            experts.push_back(row.keep(random_floats(count, 10 + uint64_t(e))).data());
            grads.push_back(row.keep(std::vector<float>(std::size_t(count))).data());
        }
        const std::vector<const float*>* values = &experts;
        const std::vector<float*>* gradients = &grads;
        if (pass == MixturePass::forward)
            row.ladon = [=] { cpu::mixture_forward(batch, layer.features, gate, *values, y); };
        else
            row.ladon = [=] { cpu::mixture_backward(batch, layer.features, gate, *values, gy, grad_gate, *gradients); };
        return with_threads(std::move(row));
    }

    Prepared loss(int64_t batch) const {
        Prepared row;
        row.work.bytes = loss_bytes(batch);
        auto& heads = row.keep(std::vector<ladon::ops::LossHead>(std::size(loss_heads)));
        for (int h = 0; h < num_loss_heads; ++h) {
            heads[std::size_t(h)].kind = loss_heads[h].kind;
            heads[std::size_t(h)].width = loss_heads[h].width;
            heads[std::size_t(h)].logits =
                row.keep(random_floats(batch * loss_heads[h].width, 10 + h, -3.0f, 3.0f)).data();
            heads[std::size_t(h)].targets = row.keep(loss_targets(loss_heads[h], batch, 20 + h)).data();
            heads[std::size_t(h)].grad_logits =
                row.keep(std::vector<float>(std::size_t(batch * loss_heads[h].width))).data();
        }
        float* head_losses = row.keep(std::vector<float>(std::size(loss_heads))).data();
        const std::vector<ladon::ops::LossHead>* descriptors = &heads;
        row.ladon = [=] { ladon::cpu::multi_head_loss(batch, *descriptors, head_losses); };
        return with_threads(std::move(row));
    }

    Prepared optimizer(int64_t count, OptimizerKind kind) const {
        Prepared row;
        row.work.bytes = optimizer_bytes(count, kind);
        float* weights = row.keep(random_floats(count, 1)).data();
        const float* grads = row.keep(random_floats(count, 2)).data();
        float* first = row.keep(std::vector<float>(std::size_t(count))).data();
        float* second = row.keep(std::vector<float>(std::size_t(count))).data();
        if (kind == OptimizerKind::adamw)
            row.ladon = [=] {
                ladon::cpu::adamw_update(count, ladon::ops::AdamWParameters{}, weights, grads, first, second);
            };
        else
            row.ladon = [=] {
                ladon::cpu::sgd_update(count, ladon::ops::SgdParameters{0.01f, 0.9f, 0.0f, false}, weights, grads,
                                       first);
            };
        return with_threads(std::move(row));
    }
};

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    // --backend=cpu times the CPU backend even where a GPU is present.
    bool force_cpu = false;
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--backend=cpu")
            force_cpu = true;
        else
            argv[kept++] = argv[i];
    }
    argc = kept;
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

    Runner cpu_runner(time_on_cpu);
    std::string backend;  // which kernels run, and why
#if LADON_BENCH_CUDA
    std::shared_ptr<void> cuda_rows;
    int devices = 0;
    const cudaError_t device_status = cudaGetDeviceCount(&devices);
    if (!force_cpu && device_status == cudaSuccess && devices > 0) {
        try {
            backend = register_cuda_rows(cuda_rows);
        } catch (const std::exception& error) {
            std::fprintf(stderr, "bench_kernels: CUDA setup failed: %s\n", error.what());
            return 1;
        }
    } else {
        add_all_rows(cpu_runner, "cpu", CpuBackend{});
        const std::string why = force_cpu ? "--backend=cpu"
                                : device_status != cudaSuccess
                                    ? std::string("cudaGetDeviceCount: ") + cudaGetErrorName(device_status)
                                    : std::string("no CUDA device");
        backend = "cpu (" + why + "), " + std::to_string(omp_get_max_threads()) + " OpenMP threads";
    }
#else
    (void)force_cpu;
    add_all_rows(cpu_runner, "cpu", CpuBackend{});
    backend = "cpu (built without CUDA), " + std::to_string(omp_get_max_threads()) + " OpenMP threads";
#endif
    std::printf("bench_kernels backend: %s\n", backend.c_str());
    std::fflush(stdout);
    benchmark::AddCustomContext("backend", backend);

    const std::size_t rows = benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    if (rows == 0) {
        std::fprintf(stderr, "bench_kernels: no benchmark matched --benchmark_filter\n");
        return 1;
    }
    return 0;
}
