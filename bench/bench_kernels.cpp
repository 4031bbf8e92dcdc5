// Kernel microbenchmarks (issue 5): every CUDA kernel family beside cuDNN and
// cuBLAS, on the layer shapes of examples/fashion_mtl.toml and of a wider
// trunk, at batch 128 and 512. Without a GPU (cudaGetDeviceCount fails or
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
//   accumulate on both sides (beta = 1), as ladon's contract says; FP32 with
//   TF32 off (CUDNN_FMA_MATH, CUBLAS_PEDANTIC_MATH). cuDNN's convolution
//   algorithm is the fastest cudnnFind*AlgorithmEx reports among those it ran
//   with FMA math, with the workspace it asks for; it may be one that is not
//   deterministic (the label and vendor_deterministic say), ladon's always is.
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
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/ops.hpp"

#if LADON_BENCH_CUDA
#include <cublas_v2.h>
#include <cudnn.h>

#include "kernels/cuda/batch_norm.hpp"
#include "kernels/cuda/conv2d.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/multi_head_loss.hpp"
#include "kernels/cuda/optimizer.hpp"
#include "kernels/cuda/pool.hpp"
#endif

namespace {

using ladon::ops::BatchNormShape;
using ladon::ops::Conv2dShape;
using ladon::ops::DenseShape;
using ladon::ops::LossKind;
using ladon::ops::Pool2dShape;

// ---------------------------------------------------------------- the shapes
// examples/fashion_mtl.toml: input 1x40x40; three times conv 3x3 padding 1
// (32, 64, 128 channels), relu, max pool 2; flatten 128x5x5 = 3200; dense 256;
// four heads, dense 10, 10, 4 and 1 (engine/graph.cpp infers these sizes).
// "wide" is the same layout with the channels of a larger trunk: conv 64,
// conv 64, pool, conv 128, pool, conv 256, pool, dense 6400 -> 512, the same
// heads. Every conv is 3x3, stride 1, padding 1; every pool 2x2, stride 2.
struct ConvLayer {
    const char* name;
    int64_t in_channels, size, out_channels;
};
constexpr ConvLayer conv_layers[] = {
    {"fashion_mtl.conv1", 1, 40, 32}, {"fashion_mtl.conv2", 32, 20, 64}, {"fashion_mtl.conv3", 64, 10, 128},
    {"wide.conv1", 1, 40, 64},        {"wide.conv2", 64, 40, 64},        {"wide.conv3", 64, 20, 128},
    {"wide.conv4", 128, 10, 256},
};

// The feature maps the pools see (each pool's input, a conv's output); batch
// norm runs on the same maps (fashion_mtl has none, a deeper trunk would).
struct FeatureMap {
    const char* name;
    int64_t channels, size;
};
constexpr FeatureMap feature_maps[] = {
    {"fashion_mtl.conv1_out", 32, 40}, {"fashion_mtl.conv2_out", 64, 20}, {"fashion_mtl.conv3_out", 128, 10},
    {"wide.conv2_out", 64, 40},        {"wide.conv3_out", 128, 20},       {"wide.conv4_out", 256, 10},
};

struct DenseLayer {
    const char* name;
    int64_t in_features, out_features;
};
constexpr DenseLayer dense_layers[] = {
    {"fashion_mtl.dense", 3200, 256},
    {"fashion_mtl.head", 256, 10},
    {"wide.dense", 6400, 512},
    {"wide.head", 512, 10},
};

// The four heads of fashion_mtl (the wide trunk has the same heads).
struct LossHeadSpec {
    LossKind kind;
    int64_t width;
};
constexpr LossHeadSpec loss_heads[] = {{LossKind::softmax_cross_entropy, 10},
                                       {LossKind::softmax_cross_entropy, 10},
                                       {LossKind::smooth_l1, 4},
                                       {LossKind::sigmoid_binary_cross_entropy, 1}};
constexpr int num_loss_heads = int(std::size(loss_heads));

// The fused optimizer updates the whole flat parameter buffer of a model.
constexpr int64_t conv_parameters(int64_t in, int64_t out) { return out * (in * 9 + 1); }
constexpr int64_t dense_parameters(int64_t in, int64_t out) { return out * (in + 1); }
constexpr int64_t heads_parameters(int64_t features) {
    return 2 * dense_parameters(features, 10) + dense_parameters(features, 4) + dense_parameters(features, 1);
}
struct ParameterSet {
    const char* name;
    int64_t count;
};
constexpr ParameterSet parameter_sets[] = {
    {"fashion_mtl.parameters", conv_parameters(1, 32) + conv_parameters(32, 64) + conv_parameters(64, 128) +
                                   dense_parameters(3200, 256) + heads_parameters(256)},
    {"wide.parameters", conv_parameters(1, 64) + conv_parameters(64, 64) + conv_parameters(64, 128) +
                            conv_parameters(128, 256) + dense_parameters(6400, 512) + heads_parameters(512)},
};
static_assert(parameter_sets[0].count == 918553, "fashion_mtl's parameter count");
static_assert(parameter_sets[1].count == 3696729, "the wide trunk's parameter count");

constexpr int64_t batches[] = {128, 512};

Conv2dShape conv_shape(const ConvLayer& layer, int64_t batch) {
    Conv2dShape shape;
    shape.batch = batch;
    shape.in_channels = layer.in_channels;
    shape.in_height = shape.in_width = layer.size;
    shape.out_channels = layer.out_channels;
    shape.kernel_height = shape.kernel_width = 3;
    shape.pad_height = shape.pad_width = 1;
    return shape;
}

Pool2dShape pool_shape(const FeatureMap& map, int64_t batch) {
    Pool2dShape shape;
    shape.batch = batch;
    shape.channels = map.channels;
    shape.in_height = shape.in_width = map.size;
    shape.kernel_height = shape.kernel_width = 2;
    shape.stride_height = shape.stride_width = 2;
    return shape;
}

BatchNormShape batch_norm_shape(const FeatureMap& map, int64_t batch) {
    BatchNormShape shape;
    shape.batch = batch;
    shape.channels = map.channels;
    shape.spatial = map.size * map.size;
    return shape;
}

double conv_flops(const Conv2dShape& s) {
    return 2.0 * double(s.output_size()) * double(s.in_channels * s.kernel_height * s.kernel_width);
}
double dense_flops(const DenseShape& s) { return 2.0 * double(s.batch) * double(s.in_features * s.out_features); }

enum class ConvPass { forward, backward_data, backward_filter };
enum class DensePass { forward, backward_data, backward_filter };
enum class PoolPass { max_forward, max_backward, average_forward, average_backward };
enum class BatchNormPass { forward_training, backward };
enum class OptimizerKind { adamw, sgd };

const char* pass_name(ConvPass pass) {
    return pass == ConvPass::forward         ? "conv2d_forward"
           : pass == ConvPass::backward_data ? "conv2d_backward_data"
                                             : "conv2d_backward_filter";
}
const char* pass_name(DensePass pass) {
    return pass == DensePass::forward         ? "dense_forward"
           : pass == DensePass::backward_data ? "dense_backward_data"
                                              : "dense_backward_filter";
}
const char* pass_name(PoolPass pass) {
    switch (pass) {
        case PoolPass::max_forward:
            return "max_pool2d_forward";
        case PoolPass::max_backward:
            return "max_pool2d_backward";
        case PoolPass::average_forward:
            return "avg_pool2d_forward";
        case PoolPass::average_backward:
            return "avg_pool2d_backward";
    }
    return "?";
}
const char* pass_name(BatchNormPass pass) {
    return pass == BatchNormPass::forward_training ? "batch_norm_forward_training" : "batch_norm_backward";
}
const char* optimizer_name(OptimizerKind kind) { return kind == OptimizerKind::adamw ? "adamw_update" : "sgd_update"; }

// Bytes the op's contract moves (see the top of the file). Backward passes
// accumulate, so their gradient output is read and written.
double pool_bytes(const Pool2dShape& s, PoolPass pass) {
    const double in = double(s.input_size()), out = double(s.output_size());
    switch (pass) {
        case PoolPass::max_forward:
            return 4.0 * (in + 2.0 * out);  // input, output, int32 argmax
        case PoolPass::max_backward:
            return 4.0 * (2.0 * out + 2.0 * in);  // grad_output, argmax, grad_input +=
        case PoolPass::average_forward:
            return 4.0 * (in + out);
        case PoolPass::average_backward:
            return 4.0 * (out + 2.0 * in);
    }
    return 0.0;
}
double batch_norm_bytes(const BatchNormShape& s, BatchNormPass pass) {
    const double elements = double(s.batch * s.channels * s.spatial);
    return pass == BatchNormPass::forward_training ? 4.0 * 2.0 * elements   // x, y
                                                   : 4.0 * 4.0 * elements;  // x, grad_y, grad_x +=
}
double loss_bytes(int64_t batch) {
    double floats = 0.0;
    for (const auto& head : loss_heads) {
        const double targets = head.kind == LossKind::softmax_cross_entropy ? 1.0 : double(head.width);
        floats += double(batch) * (2.0 * double(head.width) + targets);  // logits, grad_logits, targets
    }
    return 4.0 * floats;
}
double optimizer_bytes(int64_t count, OptimizerKind kind) {
    // AdamW reads weights, grads and both moments and writes weights and
    // moments; SGD with momentum reads weights, grads, momentum and writes two.
    return 4.0 * double(count) * (kind == OptimizerKind::adamw ? 7.0 : 5.0);
}

std::vector<float> random_floats(int64_t count, uint64_t seed, float low = -1.0f, float high = 1.0f) {
    std::vector<float> values(static_cast<std::size_t>(count));
#pragma omp parallel for
    for (int64_t i = 0; i < count; ++i)
        values[std::size_t(i)] = low + (high - low) * ladon::ops::uniform01(seed, uint64_t(i));
    return values;
}

// Targets of one loss head, [batch] class indices or [batch, width] values.
std::vector<float> loss_targets(const LossHeadSpec& head, int64_t batch, uint64_t seed) {
    if (head.kind == LossKind::softmax_cross_entropy) {
        std::vector<float> targets(static_cast<std::size_t>(batch));
        for (int64_t i = 0; i < batch; ++i) targets[std::size_t(i)] = float(i % head.width);
        return targets;
    }
    auto targets = random_floats(batch * head.width, seed, 0.0f, 1.0f);
    if (head.kind == LossKind::sigmoid_binary_cross_entropy)
        for (auto& target : targets) target = target < 0.5f ? 0.0f : 1.0f;
    return targets;
}

// ---------------------------------------------------------------- measuring

using Op = std::function<void()>;

struct Work {
    double flops = 0.0;
    double bytes = 0.0;
};

// Everything one row needs: its ops, and the buffers and descriptors they use
// (held in `resources` for as long as the ops live).
struct Prepared {
    Work work;
    Op ladon;
    Op vendor;  // empty: no baseline
    std::string label;
    std::map<std::string, double> counters;
    std::vector<std::shared_ptr<void>> resources;

    template <class Resource>
    Resource& keep(Resource resource) {
        auto held = std::make_shared<Resource>(std::move(resource));
        resources.push_back(held);
        return *held;
    }
};

// Google Benchmark calls a benchmark function several times while it sizes the
// iteration count. The row's setup (random data, cudnnFind*) is made on the
// first call and kept until another row starts, so one row's memory is held
// at a time and each setup runs once.
class Runner {
public:
    explicit Runner(std::function<double(const Op&)> time_once) : time_once_(std::move(time_once)) {}

    void add(const std::string& name, std::function<Prepared()> prepare) {
        benchmark::RegisterBenchmark(name.c_str(),
                                     [this, name, prepare](benchmark::State& state) {
                                         try {
                                             measure(state, prepared(name, prepare));
                                         } catch (const std::exception& error) {
                                             current_.reset();
                                             state.SkipWithError(error.what());
                                         }
                                     })
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
    }

private:
    Prepared& prepared(const std::string& name, const std::function<Prepared()>& prepare) {
        if (!current_ || current_name_ != name) {
            current_.reset();  // free the previous row's buffers first
            current_ = std::make_unique<Prepared>(prepare());
            current_name_ = name;
        }
        return *current_;
    }

    void measure(benchmark::State& state, const Prepared& row) const {
        // One untimed call each: cuDNN and cuBLAS load kernels lazily, and a
        // first touch of host memory pays its page faults.
        time_once_(row.ladon);
        if (row.vendor) time_once_(row.vendor);
        double ladon_seconds = 0.0, vendor_seconds = 0.0;
        for (auto _ : state) {
            const double seconds = time_once_(row.ladon);
            state.SetIterationTime(seconds);
            ladon_seconds += seconds;
            if (row.vendor) vendor_seconds += time_once_(row.vendor);
        }
        const double iterations = double(state.iterations());
        const auto rate = [&](double amount, double seconds) {
            return seconds > 0.0 ? amount * iterations / seconds * 1e-9 : 0.0;
        };
        if (row.work.flops > 0.0) state.counters["GFLOP/s"] = rate(row.work.flops, ladon_seconds);
        if (row.work.bytes > 0.0) state.counters["GB/s"] = rate(row.work.bytes, ladon_seconds);
        if (row.vendor) {
            state.counters["vendor_ms"] = vendor_seconds / iterations * 1e3;
            if (row.work.flops > 0.0) state.counters["vendor_GFLOP/s"] = rate(row.work.flops, vendor_seconds);
            if (row.work.bytes > 0.0) state.counters["vendor_GB/s"] = rate(row.work.bytes, vendor_seconds);
            state.counters["vs_vendor"] = ladon_seconds > 0.0 ? vendor_seconds / ladon_seconds : 0.0;
        }
        for (const auto& [counter, value] : row.counters) state.counters[counter] = value;
        if (!row.label.empty()) state.SetLabel(row.label);
    }

    std::function<double(const Op&)> time_once_;
    std::string current_name_;
    std::unique_ptr<Prepared> current_;
};

std::string row_name(const char* backend, const char* op, const char* layer, int64_t batch) {
    return std::string(backend) + "/" + op + "/" + layer + "/batch:" + std::to_string(batch);
}

// Registers every row, in the order op, layer, batch. `Backend` supplies one
// prepare function per kernel family.
template <class Backend>
void add_all_rows(Runner& runner, const char* backend_name, const Backend& backend) {
    for (const ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_filter})
        for (const auto& layer : conv_layers)
            for (const int64_t batch : batches)
                runner.add(row_name(backend_name, pass_name(pass), layer.name, batch),
                           [=] { return backend.conv2d(conv_shape(layer, batch), pass); });
    for (const DensePass pass : {DensePass::forward, DensePass::backward_data, DensePass::backward_filter})
        for (const auto& layer : dense_layers)
            for (const int64_t batch : batches)
                runner.add(row_name(backend_name, pass_name(pass), layer.name, batch), [=] {
                    return backend.dense(DenseShape{batch, layer.in_features, layer.out_features}, pass);
                });
    for (const PoolPass pass :
         {PoolPass::max_forward, PoolPass::max_backward, PoolPass::average_forward, PoolPass::average_backward})
        for (const auto& map : feature_maps)
            for (const int64_t batch : batches)
                runner.add(row_name(backend_name, pass_name(pass), map.name, batch),
                           [=] { return backend.pool(pool_shape(map, batch), pass); });
    for (const BatchNormPass pass : {BatchNormPass::forward_training, BatchNormPass::backward})
        for (const auto& map : feature_maps)
            for (const int64_t batch : batches)
                runner.add(row_name(backend_name, pass_name(pass), map.name, batch),
                           [=] { return backend.batch_norm(batch_norm_shape(map, batch), pass); });
    for (const int64_t batch : batches)
        runner.add(row_name(backend_name, "multi_head_loss", "fashion_mtl.heads", batch),
                   [=] { return backend.loss(batch); });
    for (const OptimizerKind kind : {OptimizerKind::adamw, OptimizerKind::sgd})
        for (const auto& set : parameter_sets)
            runner.add(std::string(backend_name) + "/" + optimizer_name(kind) + "/" + set.name,
                       [=] { return backend.optimizer(set.count, kind); });
}

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

#if LADON_BENCH_CUDA
// ---------------------------------------------------------------- CUDA backend
// cuDNN 9 marks its descriptor API (and cudnnFind*, cudnnBatchNormalization*)
// deprecated in favour of the graph API; it is still shipped, and it is the
// baseline frameworks' cuDNN paths use, so its warnings are silenced here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace {

// "cudnnConvolutionForward(handle, ...)" -> "cudnnConvolutionForward".
std::string call_name(const char* call) {
    const std::string text(call);
    return text.substr(0, text.find('('));
}
void check_call(cudaError_t status, const char* call) {
    if (status != cudaSuccess)
        throw std::runtime_error(call_name(call) + " failed: " + cudaGetErrorName(status) + " (" +
                                 cudaGetErrorString(status) + ")");
}
void check_call(cudnnStatus_t status, const char* call) {
    if (status != CUDNN_STATUS_SUCCESS)
        throw std::runtime_error(call_name(call) + " failed: " + cudnnGetErrorString(status));
}
void check_call(cublasStatus_t status, const char* call) {
    if (status != CUBLAS_STATUS_SUCCESS)
        throw std::runtime_error(call_name(call) + " failed: " + cublasGetStatusName(status));
}
#define LADON_BENCH_CHECK(call) check_call((call), #call)

// Owners of the runtime's and libraries' handles (each a pointer type).
template <auto destroy>
struct Destroy {
    template <class Pointer>
    void operator()(Pointer* handle) const {
        destroy(handle);
    }
};
template <class Handle, auto destroy>
using Owned = std::unique_ptr<std::remove_pointer_t<Handle>, Destroy<destroy>>;
using Stream = Owned<cudaStream_t, cudaStreamDestroy>;
using Event = Owned<cudaEvent_t, cudaEventDestroy>;
using CudnnHandle = Owned<cudnnHandle_t, cudnnDestroy>;
using CublasHandle = Owned<cublasHandle_t, cublasDestroy>;
using TensorDescriptor = Owned<cudnnTensorDescriptor_t, cudnnDestroyTensorDescriptor>;
using FilterDescriptor = Owned<cudnnFilterDescriptor_t, cudnnDestroyFilterDescriptor>;
using ConvolutionDescriptor = Owned<cudnnConvolutionDescriptor_t, cudnnDestroyConvolutionDescriptor>;
using PoolingDescriptor = Owned<cudnnPoolingDescriptor_t, cudnnDestroyPoolingDescriptor>;

class DeviceBuffer {
public:
    explicit DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
        if (bytes > 0) LADON_BENCH_CHECK(cudaMalloc(&data_, bytes));
    }
    DeviceBuffer(DeviceBuffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&&) = delete;
    ~DeviceBuffer() {
        if (data_) cudaFree(data_);
    }
    void* get() const { return data_; }
    float* floats() const { return static_cast<float*>(data_); }
    std::size_t bytes() const { return bytes_; }

private:
    void* data_ = nullptr;
    std::size_t bytes_ = 0;
};

template <class T>
DeviceBuffer upload(const std::vector<T>& values) {
    DeviceBuffer buffer(values.size() * sizeof(T));
    LADON_BENCH_CHECK(cudaMemcpy(buffer.get(), values.data(), buffer.bytes(), cudaMemcpyHostToDevice));
    return buffer;
}
DeviceBuffer zeros(std::size_t bytes) {
    DeviceBuffer buffer(bytes);
    if (bytes > 0) LADON_BENCH_CHECK(cudaMemset(buffer.get(), 0, bytes));
    return buffer;
}
DeviceBuffer zero_floats(int64_t count) { return zeros(std::size_t(count) * sizeof(float)); }

// One stream, one cuDNN and one cuBLAS handle on it, the timing events, and
// the buffer whose memset flushes L2 before each timed call.
class CudaContext {
public:
    CudaContext() {
        cudaStream_t stream = nullptr;
        LADON_BENCH_CHECK(cudaStreamCreate(&stream));
        stream_.reset(stream);
        cudaEvent_t event = nullptr;
        LADON_BENCH_CHECK(cudaEventCreate(&event));
        start_.reset(event);
        LADON_BENCH_CHECK(cudaEventCreate(&event));
        stop_.reset(event);
        cudnnHandle_t cudnn = nullptr;
        LADON_BENCH_CHECK(cudnnCreate(&cudnn));
        cudnn_.reset(cudnn);
        LADON_BENCH_CHECK(cudnnSetStream(cudnn, stream));
        cublasHandle_t cublas = nullptr;
        LADON_BENCH_CHECK(cublasCreate(&cublas));
        cublas_.reset(cublas);
        LADON_BENCH_CHECK(cublasSetStream(cublas, stream));
        // FP32 everywhere: pedantic math forbids TF32 and any reduced precision.
        LADON_BENCH_CHECK(cublasSetMathMode(cublas, CUBLAS_PEDANTIC_MATH));
        int device = 0, l2_bytes = 0;
        LADON_BENCH_CHECK(cudaGetDevice(&device));
        LADON_BENCH_CHECK(cudaGetDeviceProperties(&properties_, device));
        LADON_BENCH_CHECK(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device));
        l2_flush_ = std::make_unique<DeviceBuffer>(2 * std::size_t(std::max(l2_bytes, 1 << 20)));
    }

    cudaStream_t stream() const { return stream_.get(); }
    cudnnHandle_t cudnn() const { return cudnn_.get(); }
    cublasHandle_t cublas() const { return cublas_.get(); }

    std::string description() const {
        int runtime = 0, cublas_version = 0;
        cudaRuntimeGetVersion(&runtime);
        cublasGetVersion(cublas_.get(), &cublas_version);
        return std::string(properties_.name) + " (sm_" + std::to_string(properties_.major) +
               std::to_string(properties_.minor) + "), CUDA runtime " + std::to_string(runtime) + ", against cuDNN " +
               std::to_string(cudnnGetVersion()) + " and cuBLAS " + std::to_string(cublas_version) +
               ", FP32 with TF32 off";
    }

    // Seconds `op` takes on the stream, measured with events after an L2 flush.
    double time_once(const Op& op) const {
        LADON_BENCH_CHECK(cudaMemsetAsync(l2_flush_->get(), 0, l2_flush_->bytes(), stream()));
        LADON_BENCH_CHECK(cudaEventRecord(start_.get(), stream()));
        op();
        LADON_BENCH_CHECK(cudaEventRecord(stop_.get(), stream()));
        LADON_BENCH_CHECK(cudaEventSynchronize(stop_.get()));
        float milliseconds = 0.0f;
        LADON_BENCH_CHECK(cudaEventElapsedTime(&milliseconds, start_.get(), stop_.get()));
        return double(milliseconds) * 1e-3;
    }

private:
    Stream stream_;
    Event start_, stop_;
    CudnnHandle cudnn_;
    CublasHandle cublas_;
    cudaDeviceProp properties_{};
    std::unique_ptr<DeviceBuffer> l2_flush_;
};

TensorDescriptor tensor_descriptor(int64_t n, int64_t c, int64_t h, int64_t w) {
    cudnnTensorDescriptor_t raw = nullptr;
    LADON_BENCH_CHECK(cudnnCreateTensorDescriptor(&raw));
    TensorDescriptor descriptor(raw);
    LADON_BENCH_CHECK(
        cudnnSetTensor4dDescriptor(raw, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(n), int(c), int(h), int(w)));
    return descriptor;
}

// Where an op has no cuDNN or cuBLAS counterpart: a device-to-device copy of
// the same traffic (half the bytes read, half written).
Op copy_baseline(Prepared& row, const CudaContext* cuda, double bytes) {
    const std::size_t copy_bytes = std::size_t(bytes / 2.0);
    void* source = row.keep(zeros(copy_bytes)).get();
    void* destination = row.keep(zeros(copy_bytes)).get();
    row.label = "vendor: cudaMemcpyAsync of the same bytes";
    return [=] {
        LADON_BENCH_CHECK(cudaMemcpyAsync(destination, source, copy_bytes, cudaMemcpyDeviceToDevice, cuda->stream()));
    };
}

// The first (fastest) result cudnnFind* measured with FMA math, or an error.
template <class Perf>
const Perf& fastest_fma_algorithm(const std::vector<Perf>& results, int returned, const char* find) {
    for (int i = 0; i < returned; ++i)
        if (results[std::size_t(i)].status == CUDNN_STATUS_SUCCESS &&
            results[std::size_t(i)].mathType == CUDNN_FMA_MATH)
            return results[std::size_t(i)];
    throw std::runtime_error(std::string(find) + " found no algorithm that runs with CUDNN_FMA_MATH");
}

// Scratch for cudnnFind*: algorithms that need more are not tried.
std::size_t find_workspace_bytes() {
    std::size_t free_bytes = 0, total_bytes = 0;
    LADON_BENCH_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    return std::min<std::size_t>(std::size_t(1) << 30, free_bytes / 4);
}

template <class Perf>
void describe_algorithm(Prepared& row, const char* pass, const Perf& best) {
    row.counters["vendor_algo"] = double(best.algo);
    row.counters["vendor_deterministic"] = best.determinism == CUDNN_DETERMINISTIC ? 1.0 : 0.0;
    row.label = std::string("vendor: cuDNN ") + pass + " algo " + std::to_string(int(best.algo)) +
                (best.determinism == CUDNN_DETERMINISTIC ? "" : " (not deterministic)") + ", workspace " +
                std::to_string(best.memory >> 20) + " MiB";
}

struct CudaBackend {
    const CudaContext* cuda;

    Prepared conv2d(const Conv2dShape& s, ConvPass pass) const {
        const cudaStream_t stream = cuda->stream();
        const cudnnHandle_t handle = cuda->cudnn();
        Prepared row;
        row.work.flops = conv_flops(s);
        const float* x = row.keep(upload(random_floats(s.input_size(), 1))).floats();
        const float* w = row.keep(upload(random_floats(s.weight_size(), 2))).floats();
        const float* gy = row.keep(upload(random_floats(s.output_size(), 3))).floats();
        float* y = row.keep(zero_floats(s.output_size())).floats();
        float* gx = row.keep(zero_floats(s.input_size())).floats();
        float* gw = row.keep(zero_floats(s.weight_size())).floats();

        // cuDNN's view of the same shape: NCHW tensors, OIHW filter, the shape's padding and stride.
        const cudnnTensorDescriptor_t x_desc =
            row.keep(tensor_descriptor(s.batch, s.in_channels, s.in_height, s.in_width)).get();
        const cudnnTensorDescriptor_t y_desc =
            row.keep(tensor_descriptor(s.batch, s.out_channels, s.out_height(), s.out_width())).get();
        cudnnFilterDescriptor_t w_raw = nullptr;
        LADON_BENCH_CHECK(cudnnCreateFilterDescriptor(&w_raw));
        const cudnnFilterDescriptor_t w_desc = row.keep(FilterDescriptor(w_raw)).get();
        LADON_BENCH_CHECK(cudnnSetFilter4dDescriptor(w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, int(s.out_channels),
                                                     int(s.in_channels), int(s.kernel_height), int(s.kernel_width)));
        cudnnConvolutionDescriptor_t conv_raw = nullptr;
        LADON_BENCH_CHECK(cudnnCreateConvolutionDescriptor(&conv_raw));
        const cudnnConvolutionDescriptor_t conv_desc = row.keep(ConvolutionDescriptor(conv_raw)).get();
        LADON_BENCH_CHECK(cudnnSetConvolution2dDescriptor(conv_desc, int(s.pad_height), int(s.pad_width),
                                                          int(s.stride_height), int(s.stride_width), 1, 1,
                                                          CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
        LADON_BENCH_CHECK(cudnnSetConvolutionMathType(conv_desc, CUDNN_FMA_MATH));  // no TF32, no tensor cores
        int n = 0, c = 0, h = 0, wd = 0;
        LADON_BENCH_CHECK(cudnnGetConvolution2dForwardOutputDim(conv_desc, x_desc, w_desc, &n, &c, &h, &wd));
        if (n != s.batch || c != s.out_channels || h != s.out_height() || wd != s.out_width())
            throw std::runtime_error("cuDNN's convolution output shape differs from Conv2dShape's");

        static const float one = 1.0f, zero = 0.0f;
        int returned = 0;
        const DeviceBuffer find_workspace(find_workspace_bytes());
        if (pass == ConvPass::forward) {
            std::vector<cudnnConvolutionFwdAlgoPerf_t> results(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
            LADON_BENCH_CHECK(cudnnFindConvolutionForwardAlgorithmEx(handle, x_desc, x, w_desc, w, conv_desc, y_desc, y,
                                                                     int(results.size()), &returned, results.data(),
                                                                     find_workspace.get(), find_workspace.bytes()));
            const auto best = fastest_fma_algorithm(results, returned, "cudnnFindConvolutionForwardAlgorithmEx");
            describe_algorithm(row, "forward", best);
            auto& workspace = row.keep(DeviceBuffer(best.memory));
            void* ws = workspace.get();
            const std::size_t ws_bytes = workspace.bytes();
            row.ladon = [=] {
                LADON_BENCH_CHECK(
                    ladon::cuda::conv2d_forward(s, x, w, nullptr, ladon::ops::Activation::identity, 0.0f, y, stream));
            };
            row.vendor = [=] {
                LADON_BENCH_CHECK(cudnnConvolutionForward(handle, &one, x_desc, x, w_desc, w, conv_desc, best.algo, ws,
                                                          ws_bytes, &zero, y_desc, y));
            };
        } else if (pass == ConvPass::backward_data) {
            std::vector<cudnnConvolutionBwdDataAlgoPerf_t> results(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
            LADON_BENCH_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
                handle, w_desc, w, y_desc, gy, conv_desc, x_desc, gx, int(results.size()), &returned, results.data(),
                find_workspace.get(), find_workspace.bytes()));
            const auto best = fastest_fma_algorithm(results, returned, "cudnnFindConvolutionBackwardDataAlgorithmEx");
            describe_algorithm(row, "backward-data", best);
            auto& workspace = row.keep(DeviceBuffer(best.memory));
            void* ws = workspace.get();
            const std::size_t ws_bytes = workspace.bytes();
            row.ladon = [=] { LADON_BENCH_CHECK(ladon::cuda::conv2d_backward_data(s, w, gy, gx, stream)); };
            row.vendor = [=] {  // beta = 1: accumulate, as ladon does
                LADON_BENCH_CHECK(cudnnConvolutionBackwardData(handle, &one, w_desc, w, y_desc, gy, conv_desc,
                                                               best.algo, ws, ws_bytes, &one, x_desc, gx));
            };
        } else {
            std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> results(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
            LADON_BENCH_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
                handle, x_desc, x, y_desc, gy, conv_desc, w_desc, gw, int(results.size()), &returned, results.data(),
                find_workspace.get(), find_workspace.bytes()));
            const auto best = fastest_fma_algorithm(results, returned, "cudnnFindConvolutionBackwardFilterAlgorithmEx");
            describe_algorithm(row, "backward-filter", best);
            auto& workspace = row.keep(DeviceBuffer(best.memory));
            void* ws = workspace.get();
            const std::size_t ws_bytes = workspace.bytes();
            float* ladon_ws = row.keep(DeviceBuffer(ladon::cuda::conv2d_backward_filter_workspace_bytes(s))).floats();
            row.ladon = [=] {
                LADON_BENCH_CHECK(ladon::cuda::conv2d_backward_filter(s, x, gy, gw, nullptr, ladon_ws, stream));
            };
            row.vendor = [=] {  // beta = 1: accumulate, as ladon does
                LADON_BENCH_CHECK(cudnnConvolutionBackwardFilter(handle, &one, x_desc, x, y_desc, gy, conv_desc,
                                                                 best.algo, ws, ws_bytes, &one, w_desc, gw));
            };
        }
        return row;
    }

    // cuBLAS is column-major: a row-major [r, c] matrix is its [c, r]
    // transpose, so each row-major product below is written transposed.
    Prepared dense(const DenseShape& s, DensePass pass) const {
        const cudaStream_t stream = cuda->stream();
        const cublasHandle_t handle = cuda->cublas();
        Prepared row;
        row.work.flops = dense_flops(s);
        row.label = "vendor: cublasSgemm, CUBLAS_PEDANTIC_MATH";
        const float* x = row.keep(upload(random_floats(s.batch * s.in_features, 1))).floats();
        const float* w = row.keep(upload(random_floats(s.out_features * s.in_features, 2))).floats();
        const float* gy = row.keep(upload(random_floats(s.batch * s.out_features, 3))).floats();
        float* y = row.keep(zero_floats(s.batch * s.out_features)).floats();
        float* gx = row.keep(zero_floats(s.batch * s.in_features)).floats();
        float* gw = row.keep(zero_floats(s.out_features * s.in_features)).floats();
        const int batch = int(s.batch), in = int(s.in_features), out = int(s.out_features);
        static const float one = 1.0f, zero = 0.0f;
        if (pass == DensePass::forward) {
            row.ladon = [=] {
                LADON_BENCH_CHECK(
                    ladon::cuda::dense_forward(s, x, w, nullptr, ladon::ops::Activation::identity, 0.0f, y, stream));
            };
            // y^T [out, batch] = w [out, in] . x^T [in, batch]
            row.vendor = [=] {
                LADON_BENCH_CHECK(
                    cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, out, batch, in, &one, w, in, x, in, &zero, y, out));
            };
        } else if (pass == DensePass::backward_data) {
            row.ladon = [=] { LADON_BENCH_CHECK(ladon::cuda::dense_backward_data(s, w, gy, gx, stream)); };
            // gx^T [in, batch] += w^T [in, out] . gy^T [out, batch]
            row.vendor = [=] {
                LADON_BENCH_CHECK(
                    cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, in, batch, out, &one, w, in, gy, out, &one, gx, in));
            };
        } else {
            row.ladon = [=] { LADON_BENCH_CHECK(ladon::cuda::dense_backward_filter(s, x, gy, gw, nullptr, stream)); };
            // gw^T [in, out] += x^T [in, batch] . gy [batch, out]
            row.vendor = [=] {
                LADON_BENCH_CHECK(
                    cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, in, out, batch, &one, x, in, gy, out, &one, gw, in));
            };
        }
        return row;
    }

    Prepared pool(const Pool2dShape& s, PoolPass pass) const {
        const cudaStream_t stream = cuda->stream();
        const cudnnHandle_t handle = cuda->cudnn();
        Prepared row;
        row.work.bytes = pool_bytes(s, pass);
        const float* x = row.keep(upload(random_floats(s.input_size(), 1))).floats();
        const float* gy = row.keep(upload(random_floats(s.output_size(), 3))).floats();
        float* y = row.keep(zero_floats(s.output_size())).floats();
        float* gx = row.keep(zero_floats(s.input_size())).floats();
        auto* argmax = static_cast<int32_t*>(row.keep(zeros(std::size_t(s.output_size()) * sizeof(int32_t))).get());

        const bool max = pass == PoolPass::max_forward || pass == PoolPass::max_backward;
        const cudnnTensorDescriptor_t x_desc =
            row.keep(tensor_descriptor(s.batch, s.channels, s.in_height, s.in_width)).get();
        const cudnnTensorDescriptor_t y_desc =
            row.keep(tensor_descriptor(s.batch, s.channels, s.out_height(), s.out_width())).get();
        cudnnPoolingDescriptor_t pool_raw = nullptr;
        LADON_BENCH_CHECK(cudnnCreatePoolingDescriptor(&pool_raw));
        const cudnnPoolingDescriptor_t pool_desc = row.keep(PoolingDescriptor(pool_raw)).get();
        // ladon's max pool lets NaN win; its average counts the padding (count_include_pad).
        LADON_BENCH_CHECK(cudnnSetPooling2dDescriptor(
            pool_desc, max ? CUDNN_POOLING_MAX : CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING, CUDNN_PROPAGATE_NAN,
            int(s.kernel_height), int(s.kernel_width), int(s.pad_height), int(s.pad_width), int(s.stride_height),
            int(s.stride_width)));
        int n = 0, c = 0, h = 0, w = 0;
        LADON_BENCH_CHECK(cudnnGetPooling2dForwardOutputDim(pool_desc, x_desc, &n, &c, &h, &w));
        if (n != s.batch || c != s.channels || h != s.out_height() || w != s.out_width())
            throw std::runtime_error("cuDNN's pooling output shape differs from Pool2dShape's");
        row.label =
            max ? "vendor: cudnnPooling, CUDNN_POOLING_MAX" : "vendor: cudnnPooling, AVERAGE_COUNT_INCLUDE_PADDING";

        static const float one = 1.0f, zero = 0.0f;
        // The backward passes read the forward's results: ladon the argmax, cuDNN y.
        LADON_BENCH_CHECK(ladon::cuda::max_pool2d_forward(s, x, y, argmax, stream));
        LADON_BENCH_CHECK(cudnnPoolingForward(handle, pool_desc, &one, x_desc, x, &zero, y_desc, y));
        LADON_BENCH_CHECK(cudaStreamSynchronize(stream));
        const Op vendor_forward = [=] {
            LADON_BENCH_CHECK(cudnnPoolingForward(handle, pool_desc, &one, x_desc, x, &zero, y_desc, y));
        };
        const Op vendor_backward = [=] {  // beta = 1: accumulate, as ladon does
            LADON_BENCH_CHECK(
                cudnnPoolingBackward(handle, pool_desc, &one, y_desc, y, y_desc, gy, x_desc, x, &one, x_desc, gx));
        };
        switch (pass) {
            case PoolPass::max_forward:
                row.ladon = [=] { LADON_BENCH_CHECK(ladon::cuda::max_pool2d_forward(s, x, y, argmax, stream)); };
                row.vendor = vendor_forward;
                break;
            case PoolPass::max_backward:
                row.ladon = [=] { LADON_BENCH_CHECK(ladon::cuda::max_pool2d_backward(s, gy, argmax, gx, stream)); };
                row.vendor = vendor_backward;
                break;
            case PoolPass::average_forward:
                row.ladon = [=] { LADON_BENCH_CHECK(ladon::cuda::avg_pool2d_forward(s, x, y, stream)); };
                row.vendor = vendor_forward;
                break;
            case PoolPass::average_backward:
                row.ladon = [=] { LADON_BENCH_CHECK(ladon::cuda::avg_pool2d_backward(s, gy, gx, stream)); };
                row.vendor = vendor_backward;
                break;
        }
        return row;
    }

    Prepared batch_norm(const BatchNormShape& s, BatchNormPass pass) const {
        const cudaStream_t stream = cuda->stream();
        const cudnnHandle_t handle = cuda->cudnn();
        Prepared row;
        row.work.bytes = batch_norm_bytes(s, pass);
        row.label = "vendor: cudnnBatchNormalization, CUDNN_BATCHNORM_SPATIAL";
        const int64_t elements = s.batch * s.channels * s.spatial;
        const float* x = row.keep(upload(random_floats(elements, 1))).floats();
        const float* gy = row.keep(upload(random_floats(elements, 3))).floats();
        const float* gamma = row.keep(upload(random_floats(s.channels, 4, 0.5f, 1.5f))).floats();
        const float* beta = row.keep(upload(random_floats(s.channels, 5))).floats();
        float* y = row.keep(zero_floats(elements)).floats();
        float* gx = row.keep(zero_floats(elements)).floats();
        const auto per_channel = [&](float value) {
            return row.keep(upload(std::vector<float>(std::size_t(s.channels), value))).floats();
        };
        // Each side keeps its own saved statistics (cuDNN's are its own format).
        float *mean = per_channel(0.0f), *inv_std = per_channel(1.0f), *vendor_mean = per_channel(0.0f),
              *vendor_inv_std = per_channel(1.0f), *running_mean = per_channel(0.0f), *running_var = per_channel(1.0f),
              *grad_gamma = per_channel(0.0f), *grad_beta = per_channel(0.0f);

        // x as [batch, channels, spatial, 1]; the per-channel tensors as cuDNN derives them.
        const cudnnTensorDescriptor_t x_desc = row.keep(tensor_descriptor(s.batch, s.channels, s.spatial, 1)).get();
        const cudnnTensorDescriptor_t channel_desc = row.keep(tensor_descriptor(1, s.channels, 1, 1)).get();
        LADON_BENCH_CHECK(cudnnDeriveBNTensorDescriptor(channel_desc, x_desc, CUDNN_BATCHNORM_SPATIAL));
        const double epsilon = std::max(double(s.epsilon), CUDNN_BN_MIN_EPSILON), momentum = s.momentum;

        static const float one = 1.0f, zero = 0.0f;
        const Op ladon_forward = [=] {
            LADON_BENCH_CHECK(ladon::cuda::batch_norm_forward_training(s, x, gamma, beta, y, mean, inv_std,
                                                                       running_mean, running_var, stream));
        };
        const Op vendor_forward = [=] {
            LADON_BENCH_CHECK(cudnnBatchNormalizationForwardTraining(
                handle, CUDNN_BATCHNORM_SPATIAL, &one, &zero, x_desc, x, x_desc, y, channel_desc, gamma, beta, momentum,
                running_mean, running_var, epsilon, vendor_mean, vendor_inv_std));
        };
        if (pass == BatchNormPass::forward_training) {
            row.ladon = ladon_forward;
            row.vendor = vendor_forward;
        } else {
            ladon_forward();  // the saved statistics the backward passes read
            vendor_forward();
            LADON_BENCH_CHECK(cudaStreamSynchronize(stream));
            row.ladon = [=] {
                LADON_BENCH_CHECK(ladon::cuda::batch_norm_backward(s, x, gy, gamma, mean, inv_std, gx, grad_gamma,
                                                                   grad_beta, stream));
            };
            row.vendor = [=] {  // every beta = 1: accumulate, as ladon does
                LADON_BENCH_CHECK(cudnnBatchNormalizationBackward(
                    handle, CUDNN_BATCHNORM_SPATIAL, &one, &one, &one, &one, x_desc, x, x_desc, gy, x_desc, gx,
                    channel_desc, gamma, grad_gamma, grad_beta, epsilon, vendor_mean, vendor_inv_std));
            };
        }
        return row;
    }

    Prepared loss(int64_t batch) const {
        const cudaStream_t stream = cuda->stream();
        Prepared row;
        row.work.bytes = loss_bytes(batch);
        std::vector<ladon::ops::LossHead> heads(std::size(loss_heads));
        for (int h = 0; h < num_loss_heads; ++h) {
            auto& head = heads[std::size_t(h)];
            head.kind = loss_heads[h].kind;
            head.width = loss_heads[h].width;
            head.logits = row.keep(upload(random_floats(batch * head.width, 10 + h, -3.0f, 3.0f))).floats();
            head.targets = row.keep(upload(loss_targets(loss_heads[h], batch, 20 + h))).floats();
            head.grad_logits = row.keep(zero_floats(batch * head.width)).floats();
        }
        // The kernel reads the head descriptors from device memory.
        const auto* heads_device = static_cast<const ladon::ops::LossHead*>(row.keep(upload(heads)).get());
        float* head_losses = row.keep(zero_floats(num_loss_heads)).floats();
        void* scratch = row.keep(zeros(ladon::cuda::multi_head_loss_scratch_bytes(batch, num_loss_heads))).get();
        row.ladon = [=] {
            LADON_BENCH_CHECK(
                ladon::cuda::multi_head_loss(batch, heads_device, num_loss_heads, head_losses, scratch, stream));
        };
        row.vendor = copy_baseline(row, cuda, row.work.bytes);
        return row;
    }

    Prepared optimizer(int64_t count, OptimizerKind kind) const {
        const cudaStream_t stream = cuda->stream();
        Prepared row;
        row.work.bytes = optimizer_bytes(count, kind);
        float* weights = row.keep(upload(random_floats(count, 1))).floats();
        const float* grads = row.keep(upload(random_floats(count, 2))).floats();
        float* first = row.keep(zero_floats(count)).floats();
        float* second = row.keep(zero_floats(count)).floats();
        if (kind == OptimizerKind::adamw)
            row.ladon = [=] {
                LADON_BENCH_CHECK(ladon::cuda::adamw_update(count, ladon::ops::AdamWParameters{}, weights, grads, first,
                                                            second, stream));
            };
        else
            row.ladon = [=] {
                LADON_BENCH_CHECK(ladon::cuda::sgd_update(count, ladon::ops::SgdParameters{0.01f, 0.9f, 0.0f, false},
                                                          weights, grads, first, stream));
            };
        row.vendor = copy_baseline(row, cuda, row.work.bytes);
        return row;
    }
};

}  // namespace

#pragma GCC diagnostic pop
#endif  // LADON_BENCH_CUDA

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
    std::unique_ptr<CudaContext> cuda;
    std::unique_ptr<Runner> cuda_runner;
    int devices = 0;
    const cudaError_t device_status = cudaGetDeviceCount(&devices);
    if (!force_cpu && device_status == cudaSuccess && devices > 0) {
        try {
            cuda = std::make_unique<CudaContext>();
            cuda_runner =
                std::make_unique<Runner>([context = cuda.get()](const Op& op) { return context->time_once(op); });
            add_all_rows(*cuda_runner, "cuda", CudaBackend{cuda.get()});
            backend = "cuda, " + cuda->description();
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
