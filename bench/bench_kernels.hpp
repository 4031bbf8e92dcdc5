#pragma once
// What bench_kernels.cpp (the CPU backend, main) and bench_kernels_cuda.cpp
// (the CUDA backend beside cuDNN/cuBLAS) share: the layer shapes, the work
// each row does, and the runner that times a row and sets its counters.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/ops.hpp"

namespace ladon::bench {

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
// heads. Every conv there is 3x3, stride 1, padding 1; every pool 2x2, stride 2.
struct ConvLayer {
    const char* name;
    int64_t in_channels, size, out_channels;
    int64_t kernel = 3, stride = 1, padding = 1;
};
constexpr ConvLayer conv_layers[] = {
    {"fashion_mtl.conv1", 1, 40, 32}, {"fashion_mtl.conv2", 32, 20, 64}, {"fashion_mtl.conv3", 64, 10, 128},
    {"wide.conv1", 1, 40, 64},        {"wide.conv2", 64, 40, 64},        {"wide.conv3", 64, 20, 128},
    {"wide.conv4", 128, 10, 256},
};

// ResNet-18 at 224 x 224 (bench/models/resnet18.toml), at batch 256 only:
// its distinct convolutions, the stem, each stage's 3 x 3, and the strided
// first 3 x 3 ("down") and 1 x 1 shortcut projection of stages 2 to 4.
constexpr ConvLayer resnet18_conv_layers[] = {
    {"resnet18.conv1", 3, 224, 64, 7, 2, 3},
    {"resnet18.layer1", 64, 56, 64},
    {"resnet18.layer2.down", 64, 56, 128, 3, 2, 1},
    {"resnet18.layer2", 128, 28, 128},
    {"resnet18.layer2.shortcut", 64, 56, 128, 1, 2, 0},
    {"resnet18.layer3.down", 128, 28, 256, 3, 2, 1},
    {"resnet18.layer3", 256, 14, 256},
    {"resnet18.layer3.shortcut", 128, 28, 256, 1, 2, 0},
    {"resnet18.layer4.down", 256, 14, 512, 3, 2, 1},
    {"resnet18.layer4", 512, 7, 512},
    {"resnet18.layer4.shortcut", 256, 14, 512, 1, 2, 0},
};
constexpr int64_t resnet18_batch = 256;

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

// Dense-heavy products, M, N and K all >= 1024 (the tensor-core GEMM's
// targets), each at its own batch.
struct DenseCase {
    const char* name;
    int64_t batch, in_features, out_features;
};
constexpr DenseCase dense_heavy[] = {
    {"mlp.1024", 1024, 1024, 1024},
    {"mlp.4096", 2048, 4096, 4096},
    {"mlp.expand", 8192, 1024, 4096},
};

// The dense ceilings of an H100 or H200 (SXM; the two have the same), in
// TFLOP/s: FP32 FMA, and TF32 and BF16 tensor cores (dense, no sparsity).
constexpr double peak_fp32_tflops = 67.0, peak_tf32_tflops = 495.0, peak_bf16_tflops = 990.0;
// A device-to-device copy on an H200, measured (TB/s): the memory-bound
// rows' ceiling.
constexpr double h200_copy_tbps = 4.3;

// Mixtures of experts (MMoE) on the trunks' features: E experts of the dense
// layer's width, mixed per head by a softmax gate.
struct MixtureLayer {
    const char* name;
    int64_t features, experts;
};
constexpr MixtureLayer mixture_layers[] = {{"fashion_mtl.mmoe", 256, 4}, {"wide.mmoe", 512, 8}};

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

inline Conv2dShape conv_shape(const ConvLayer& layer, int64_t batch) {
    Conv2dShape shape;
    shape.batch = batch;
    shape.in_channels = layer.in_channels;
    shape.in_height = shape.in_width = layer.size;
    shape.out_channels = layer.out_channels;
    shape.kernel_height = shape.kernel_width = layer.kernel;
    shape.stride_height = shape.stride_width = layer.stride;
    shape.pad_height = shape.pad_width = layer.padding;
    return shape;
}

inline Pool2dShape pool_shape(const FeatureMap& map, int64_t batch) {
    Pool2dShape shape;
    shape.batch = batch;
    shape.channels = map.channels;
    shape.in_height = shape.in_width = map.size;
    shape.kernel_height = shape.kernel_width = 2;
    shape.stride_height = shape.stride_width = 2;
    return shape;
}

inline BatchNormShape batch_norm_shape(const FeatureMap& map, int64_t batch) {
    BatchNormShape shape;
    shape.batch = batch;
    shape.channels = map.channels;
    shape.spatial = map.size * map.size;
    return shape;
}

inline double conv_flops(const Conv2dShape& s) {
    return 2.0 * double(s.output_size()) * double(s.in_channels * s.kernel_height * s.kernel_width);
}
inline double dense_flops(const DenseShape& s) {
    return 2.0 * double(s.batch) * double(s.in_features * s.out_features);
}

enum class ConvPass { forward, backward_data, backward_filter };
enum class DensePass { forward, backward_data, backward_filter };
// The conv and dense passes on the tensor cores (CUDA only).
enum class MatmulMath { tf32, bf16 };
inline const char* math_suffix(MatmulMath math) { return math == MatmulMath::tf32 ? "_tf32" : "_bf16"; }
enum class PoolPass { max_forward, max_backward, average_forward, average_backward };
enum class BatchNormPass { forward_training, backward };
enum class OptimizerKind { adamw, sgd };
// The gating ops on a feature map: softmax over its channels, its global
// average, and a [N, C] gate multiplied into it (squeeze-and-excitation).
enum class GatingPass {
    softmax_forward,
    softmax_backward,
    global_avg_pool_forward,
    global_avg_pool_backward,
    multiply_forward,
    multiply_backward
};
enum class MixturePass { forward, backward };

inline const char* pass_name(ConvPass pass) {
    return pass == ConvPass::forward         ? "conv2d_forward"
           : pass == ConvPass::backward_data ? "conv2d_backward_data"
                                             : "conv2d_backward_filter";
}
inline const char* pass_name(DensePass pass) {
    return pass == DensePass::forward         ? "dense_forward"
           : pass == DensePass::backward_data ? "dense_backward_data"
                                              : "dense_backward_filter";
}
inline const char* pass_name(PoolPass pass) {
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
inline const char* pass_name(BatchNormPass pass) {
    return pass == BatchNormPass::forward_training ? "batch_norm_forward_training" : "batch_norm_backward";
}
inline const char* pass_name(GatingPass pass) {
    constexpr const char* names[] = {"softmax_forward",          "softmax_backward",  "global_avg_pool_forward",
                                     "global_avg_pool_backward", "multiply_forward",  "multiply_backward"};
    return names[int(pass)];
}
inline const char* pass_name(MixturePass pass) {
    return pass == MixturePass::forward ? "mixture_forward" : "mixture_backward";
}
inline const char* optimizer_name(OptimizerKind kind) {
    return kind == OptimizerKind::adamw ? "adamw_update" : "sgd_update";
}

// Bytes the op's contract moves (see the top of the file). Backward passes
// accumulate, so their gradient output is read and written. argmax_bytes per
// output: 4 on the CPU (an int32 index), 1 or 4 on the GPU
// (cuda::max_pool2d_argmax_bytes).
inline double pool_bytes(const Pool2dShape& s, PoolPass pass, int argmax_bytes = 4) {
    const double in = double(s.input_size()), out = double(s.output_size());
    switch (pass) {
        case PoolPass::max_forward:
            return 4.0 * (in + out) + argmax_bytes * out;  // input, output, argmax
        case PoolPass::max_backward:
            return (4.0 + argmax_bytes) * out + 8.0 * in;  // grad_output, argmax, grad_input +=
        case PoolPass::average_forward:
            return 4.0 * (in + out);
        case PoolPass::average_backward:
            return 4.0 * (out + 2.0 * in);
    }
    return 0.0;
}
inline double batch_norm_bytes(const BatchNormShape& s, BatchNormPass pass) {
    const double elements = double(s.batch * s.channels * s.spatial);
    return pass == BatchNormPass::forward_training ? 4.0 * 2.0 * elements   // x, y
                                                   : 4.0 * 4.0 * elements;  // x, grad_y, grad_x +=
}
inline double gating_bytes(const FeatureMap& map, int64_t batch, GatingPass pass) {
    const double x = double(batch * map.channels * map.size * map.size), planes = double(batch * map.channels);
    switch (pass) {
        case GatingPass::softmax_forward:
            return 4.0 * 2.0 * x;  // x, y
        case GatingPass::softmax_backward:
            return 4.0 * 4.0 * x;  // y, grad_y, grad_x +=
        case GatingPass::global_avg_pool_forward:
            return 4.0 * (x + planes);
        case GatingPass::global_avg_pool_backward:
            return 4.0 * (planes + 2.0 * x);
        case GatingPass::multiply_forward:
            return 4.0 * (planes + 2.0 * x);  // gate, x, y
        case GatingPass::multiply_backward:
            return 4.0 * (3.0 * planes + 4.0 * x);  // gate, x, grad_y; grad_gate +=, grad_x +=
    }
    return 0.0;
}
inline double mixture_bytes(const MixtureLayer& layer, int64_t batch, MixturePass pass) {
    const double expert = double(batch * layer.features), gate = double(batch * layer.experts);
    const double experts = double(layer.experts);
    return pass == MixturePass::forward ? 4.0 * (gate + (experts + 1.0) * expert)
                                        : 4.0 * (3.0 * gate + (3.0 * experts + 1.0) * expert);
}
inline double loss_bytes(int64_t batch) {
    double floats = 0.0;
    for (const auto& head : loss_heads) {
        const double targets = head.kind == LossKind::softmax_cross_entropy ? 1.0 : double(head.width);
        floats += double(batch) * (2.0 * double(head.width) + targets);  // logits, grad_logits, targets
    }
    return 4.0 * floats;
}
inline double optimizer_bytes(int64_t count, OptimizerKind kind) {
    // AdamW reads weights, grads and both moments and writes weights and
    // moments; SGD with momentum reads weights, grads, momentum and writes two.
    return 4.0 * double(count) * (kind == OptimizerKind::adamw ? 7.0 : 5.0);
}

inline std::vector<float> random_floats(int64_t count, uint64_t seed, float low = -1.0f, float high = 1.0f) {
    std::vector<float> values(static_cast<std::size_t>(count));
#pragma omp parallel for
    for (int64_t i = 0; i < count; ++i)
        values[std::size_t(i)] = low + (high - low) * ladon::ops::uniform01(seed, uint64_t(i));
    return values;
}

// Targets of one loss head, [batch] class indices or [batch, width] values.
inline std::vector<float> loss_targets(const LossHeadSpec& head, int64_t batch, uint64_t seed) {
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
    Op vendor;                 // empty: no baseline
    Op vendor_tf32;            // the vendor with TF32 allowed (conv, dense); empty: the same math as `vendor`
    Op vendor_bf16;            // the vendor on BF16 operands (the BF16 rows); empty: none
    double peak_tflops = 0.0;  // the ceiling of ladon's math (peak_*_tflops); 0: no FLOP row or no GPU
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
    // copy_tbps > 0: memory-bound rows also report their share of it.
    explicit Runner(std::function<double(const Op&)> time_once, double copy_tbps = 0.0)
        : time_once_(std::move(time_once)), copy_tbps_(copy_tbps) {}

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
        for (const Op* vendor : {&row.vendor, &row.vendor_tf32, &row.vendor_bf16})
            if (*vendor) time_once_(*vendor);
        double ladon_seconds = 0.0, vendor_seconds = 0.0, vendor_tf32_seconds = 0.0, vendor_bf16_seconds = 0.0;
        for (auto _ : state) {
            const double seconds = time_once_(row.ladon);
            state.SetIterationTime(seconds);
            ladon_seconds += seconds;
            if (row.vendor) vendor_seconds += time_once_(row.vendor);
            if (row.vendor_tf32) vendor_tf32_seconds += time_once_(row.vendor_tf32);
            if (row.vendor_bf16) vendor_bf16_seconds += time_once_(row.vendor_bf16);
        }
        const double iterations = double(state.iterations());
        const auto rate = [&](double amount, double seconds) {
            return seconds > 0.0 ? amount * iterations / seconds * 1e-9 : 0.0;
        };
        if (row.work.flops > 0.0) state.counters["GFLOP/s"] = rate(row.work.flops, ladon_seconds);
        if (row.work.flops > 0.0 && row.peak_tflops > 0.0) {  // what share of the math's ceiling
            state.counters["TFLOP/s"] = rate(row.work.flops, ladon_seconds) * 1e-3;
            state.counters["pct_of_peak"] = rate(row.work.flops, ladon_seconds) * 1e-3 / row.peak_tflops * 100.0;
        }
        if (row.work.bytes > 0.0) state.counters["GB/s"] = rate(row.work.bytes, ladon_seconds);
        if (row.work.bytes > 0.0 && copy_tbps_ > 0.0)
            state.counters["pct_of_copy"] = rate(row.work.bytes, ladon_seconds) * 1e-3 / copy_tbps_ * 100.0;
        if (row.vendor) {
            state.counters["vendor_ms"] = vendor_seconds / iterations * 1e3;
            if (row.work.flops > 0.0) state.counters["vendor_GFLOP/s"] = rate(row.work.flops, vendor_seconds);
            if (row.work.bytes > 0.0) state.counters["vendor_GB/s"] = rate(row.work.bytes, vendor_seconds);
            state.counters["vs_vendor"] = ladon_seconds > 0.0 ? vendor_seconds / ladon_seconds : 0.0;
        }
        if (row.vendor_tf32) {
            state.counters["vendor_tf32_ms"] = vendor_tf32_seconds / iterations * 1e3;
            if (row.work.flops > 0.0) state.counters["vendor_tf32_GFLOP/s"] = rate(row.work.flops, vendor_tf32_seconds);
            state.counters["vs_vendor_tf32"] = ladon_seconds > 0.0 ? vendor_tf32_seconds / ladon_seconds : 0.0;
            if (row.work.flops > 0.0 && row.peak_tflops > 0.0)
                state.counters["vendor_tf32_pct_of_tf32_peak"] =
                    rate(row.work.flops, vendor_tf32_seconds) * 1e-3 / peak_tf32_tflops * 100.0;
        }
        if (row.vendor_bf16) {
            state.counters["vendor_bf16_ms"] = vendor_bf16_seconds / iterations * 1e3;
            if (row.work.flops > 0.0) state.counters["vendor_bf16_GFLOP/s"] = rate(row.work.flops, vendor_bf16_seconds);
            state.counters["vs_vendor_bf16"] = ladon_seconds > 0.0 ? vendor_bf16_seconds / ladon_seconds : 0.0;
        }
        for (const auto& [counter, value] : row.counters) state.counters[counter] = value;
        if (!row.label.empty()) state.SetLabel(row.label);
    }

    std::function<double(const Op&)> time_once_;
    double copy_tbps_ = 0.0;
    std::string current_name_;
    std::unique_ptr<Prepared> current_;
};

inline std::string row_name(const char* backend, const char* op, const char* layer, int64_t batch) {
    return std::string(backend) + "/" + op + "/" + layer + "/batch:" + std::to_string(batch);
}

// Every conv shape with its batch: fashion_mtl's and the wide trunk's at
// each of `batches`, ResNet-18's at resnet18_batch.
template <class Visit>
void for_each_conv_case(Visit visit) {
    for (const auto& layer : conv_layers)
        for (const int64_t batch : batches) visit(layer.name, conv_shape(layer, batch));
    for (const auto& layer : resnet18_conv_layers) visit(layer.name, conv_shape(layer, resnet18_batch));
}

// Every dense shape: the trunks' layers at each of `batches`, the
// dense-heavy set at its own batches.
template <class Visit>
void for_each_dense_case(Visit visit) {
    for (const auto& layer : dense_layers)
        for (const int64_t batch : batches) visit(layer.name, DenseShape{batch, layer.in_features, layer.out_features});
    for (const auto& c : dense_heavy) visit(c.name, DenseShape{c.batch, c.in_features, c.out_features});
}

// Registers every row, in the order op, layer, batch. `Backend` supplies one
// prepare function per kernel family; the tensor-core rows (op name + _tf32
// or _bf16) where it has them.
template <class Backend>
void add_all_rows(Runner& runner, const char* backend_name, const Backend& backend) {
    constexpr bool tensor_cores = requires {
        backend.dense_tensor_core(DenseShape{}, DensePass::forward, MatmulMath::tf32);
    };
    for (const ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_filter})
        for_each_conv_case([&](const char* layer, const Conv2dShape& shape) {
            runner.add(row_name(backend_name, pass_name(pass), layer, shape.batch),
                       [=] { return backend.conv2d(shape, pass); });
        });
    if constexpr (tensor_cores)
        for (const MatmulMath math : {MatmulMath::tf32, MatmulMath::bf16})
            for (const ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_filter})
                for_each_conv_case([&](const char* layer, const Conv2dShape& shape) {
                    const std::string op = std::string(pass_name(pass)) + math_suffix(math);
                    runner.add(row_name(backend_name, op.c_str(), layer, shape.batch),
                               [=] { return backend.conv2d_tensor_core(shape, pass, math); });
                });
    for (const DensePass pass : {DensePass::forward, DensePass::backward_data, DensePass::backward_filter})
        for_each_dense_case([&](const char* layer, const DenseShape& shape) {
            runner.add(row_name(backend_name, pass_name(pass), layer, shape.batch),
                       [=] { return backend.dense(shape, pass); });
        });
    if constexpr (tensor_cores)
        for (const MatmulMath math : {MatmulMath::tf32, MatmulMath::bf16})
            for (const DensePass pass : {DensePass::forward, DensePass::backward_data, DensePass::backward_filter})
                for_each_dense_case([&](const char* layer, const DenseShape& shape) {
                    const std::string op = std::string(pass_name(pass)) + math_suffix(math);
                    runner.add(row_name(backend_name, op.c_str(), layer, shape.batch),
                               [=] { return backend.dense_tensor_core(shape, pass, math); });
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
    for (const GatingPass pass :
         {GatingPass::softmax_forward, GatingPass::softmax_backward, GatingPass::global_avg_pool_forward,
          GatingPass::global_avg_pool_backward, GatingPass::multiply_forward, GatingPass::multiply_backward})
        for (const auto& map : feature_maps)
            for (const int64_t batch : batches)
                runner.add(row_name(backend_name, pass_name(pass), map.name, batch),
                           [=] { return backend.gating(map, batch, pass); });
    for (const MixturePass pass : {MixturePass::forward, MixturePass::backward})
        for (const auto& layer : mixture_layers)
            for (const int64_t batch : batches)
                runner.add(row_name(backend_name, pass_name(pass), layer.name, batch),
                           [=] { return backend.mixture(layer, batch, pass); });
    for (const int64_t batch : batches)
        runner.add(row_name(backend_name, "multi_head_loss", "fashion_mtl.heads", batch),
                   [=] { return backend.loss(batch); });
    for (const OptimizerKind kind : {OptimizerKind::adamw, OptimizerKind::sgd})
        for (const auto& set : parameter_sets)
            runner.add(std::string(backend_name) + "/" + optimizer_name(kind) + "/" + set.name,
                       [=] { return backend.optimizer(set.count, kind); });
}

// bench_kernels_cuda.cpp, where built (LADON_BENCH_CUDA): registers every row
// on the current GPU beside cuDNN/cuBLAS and returns the backend line's text;
// `keep` holds the GPU context and the runner until the rows have run.
// Throws when the CUDA, cuDNN or cuBLAS setup fails.
std::string register_cuda_rows(std::shared_ptr<void>& keep);

}  // namespace ladon::bench
