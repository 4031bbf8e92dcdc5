#pragma once
// Every op ladon computes, declared once. An op is a plain shape struct plus
// functions on raw pointers; the engine computes shapes once and hands them in,
// kernels never infer shapes. `cpu/` implements each function here (namespace
// ladon::cpu); `cuda/` implements the same set (namespace ladon::cuda),
// tested against `cpu/` on the emulator (`emu/`) and on a GPU.
//
// Conventions shared by every implementation:
// - Layout NCHW, float32; conv weights OIHW, dense weights [out, in], as PyTorch.
// - Forward functions overwrite their output.
// - Backward functions ACCUMULATE (+=) into every gradient they produce, both
//   activation gradients and parameter gradients. The executor zeroes the
//   gradient buffers once before backward; fan-out then sums for free.
// - Indices and sizes are 64-bit.
// - CPU implementations parallelise with OpenMP and are deterministic for a
//   given thread count (reductions in a fixed order, no float atomics).
// - Ops that need scratch memory say how much through `*_workspace_floats`;
//   the executor plans it once so no op allocates during a training step.
#include <cstddef>
#include <cstdint>
#include <span>

namespace ladon::ops {

// ---------------------------------------------------------------- shapes

struct Conv2dShape {
    int64_t batch = 1;
    int64_t in_channels = 1;
    int64_t in_height = 1;
    int64_t in_width = 1;
    int64_t out_channels = 1;
    int64_t kernel_height = 1;
    int64_t kernel_width = 1;
    int64_t stride_height = 1;
    int64_t stride_width = 1;
    int64_t pad_height = 0;
    int64_t pad_width = 0;

    constexpr int64_t out_height() const { return (in_height + 2 * pad_height - kernel_height) / stride_height + 1; }
    constexpr int64_t out_width() const { return (in_width + 2 * pad_width - kernel_width) / stride_width + 1; }
    constexpr int64_t input_size() const { return batch * in_channels * in_height * in_width; }
    constexpr int64_t output_size() const { return batch * out_channels * out_height() * out_width(); }
    constexpr int64_t weight_size() const { return out_channels * in_channels * kernel_height * kernel_width; }
};

// Pooling windows that hang over the padded border are clipped to the input
// for max pooling (padding acts as -inf); average pooling divides by the full
// kernel area (PyTorch's count_include_pad=True default).
struct Pool2dShape {
    int64_t batch = 1;
    int64_t channels = 1;
    int64_t in_height = 1;
    int64_t in_width = 1;
    int64_t kernel_height = 1;
    int64_t kernel_width = 1;
    int64_t stride_height = 1;
    int64_t stride_width = 1;
    int64_t pad_height = 0;
    int64_t pad_width = 0;

    constexpr int64_t out_height() const { return (in_height + 2 * pad_height - kernel_height) / stride_height + 1; }
    constexpr int64_t out_width() const { return (in_width + 2 * pad_width - kernel_width) / stride_width + 1; }
    constexpr int64_t input_size() const { return batch * channels * in_height * in_width; }
    constexpr int64_t output_size() const { return batch * channels * out_height() * out_width(); }
};

// input [batch, in_features], weight [out_features, in_features],
// output [batch, out_features].
struct DenseShape {
    int64_t batch = 1;
    int64_t in_features = 1;
    int64_t out_features = 1;
};

// x and y [batch, channels, spatial] with spatial = H*W (1 after a dense layer).
struct BatchNormShape {
    int64_t batch = 1;
    int64_t channels = 1;
    int64_t spatial = 1;
    float epsilon = 1e-5f;
    float momentum = 0.1f;  // running = (1 - momentum) * running + momentum * batch statistic
};

enum class Activation : int32_t { identity, relu, leaky_relu, sigmoid, tanh };

// ---------------------------------------------------------------- counter-based randomness
// A stateless hash of (seed, index) so the CPU and CUDA backends draw the same
// dropout masks without sharing generator state. splitmix64 finaliser.
constexpr uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
// Uniform in [0, 1) with 24 bits of resolution.
constexpr float uniform01(uint64_t seed, uint64_t index) {
    return static_cast<float>(mix64(seed ^ mix64(index)) >> 40) * (1.0f / 16777216.0f);
}
// Dropout keeps element i when uniform01(seed, i) >= probability and scales it
// by 1 / (1 - probability).

// ---------------------------------------------------------------- losses

enum class LossKind : int32_t {
    softmax_cross_entropy,        // targets [batch] class index stored as float; optional label smoothing
    sigmoid_binary_cross_entropy, // targets [batch, width] of 0/1
    mean_squared_error,           // targets [batch, width]
    smooth_l1,                    // targets [batch, width]; Huber with `beta`
};

// One head of the fused multi-head loss. Each head's mean loss is over its
// present samples (mask != 0): softmax CE averages per sample, the other kinds
// per element (present samples x width), as PyTorch's 'mean' reduction does.
// A head with no present sample has loss 0 and gradient 0.
// grad_logits is OVERWRITTEN with weight * d(mean loss)/d(logits); masked rows
// get 0.
struct LossHead {
    LossKind kind = LossKind::softmax_cross_entropy;
    int64_t width = 1;               // logits per sample
    const float* logits = nullptr;   // [batch, width]
    const float* targets = nullptr;  // see LossKind
    const float* mask = nullptr;     // [batch], 1 present / 0 missing; nullptr = all present
    float weight = 1.0f;
    float label_smoothing = 0.0f;    // softmax CE only, in [0, 1)
    float beta = 1.0f;               // smooth L1 only, > 0
    float* grad_logits = nullptr;    // [batch, width]
};

// ---------------------------------------------------------------- optimizers
// PyTorch's update rules, over one flat buffer each.

struct SgdParameters {
    float learning_rate = 0.01f;
    float momentum = 0.0f;
    float weight_decay = 0.0f;  // L2, added to the gradient
    bool nesterov = false;
};

struct AdamWParameters {
    float learning_rate = 1e-3f;
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float epsilon = 1e-8f;
    float weight_decay = 0.01f;  // decoupled: p -= lr * weight_decay * p
    int64_t step = 1;            // 1-based step count, for bias correction
};

// The most experts a mixture takes (a CUDA kernel gets their pointers as an
// argument).
constexpr int64_t max_mixture_experts = 64;

}  // namespace ladon::ops

namespace ladon::cpu {
using namespace ladon::ops;

// conv2d: im2col + GEMM per sample.
std::size_t conv2d_workspace_floats(const Conv2dShape& shape, int threads);
void conv2d_forward(const Conv2dShape& shape, const float* input, const float* weight, const float* bias /*nullable*/,
                    float* output, float* workspace);
void conv2d_backward_data(const Conv2dShape& shape, const float* weight, const float* grad_output, float* grad_input,
                          float* workspace);
void conv2d_backward_filter(const Conv2dShape& shape, const float* input, const float* grad_output, float* grad_weight,
                            float* grad_bias /*nullable*/, float* workspace);

// Pooling. max_pool2d_forward records, per output, the flat input index
// (within its [H, W] plane) of the maximum, for the backward pass.
void max_pool2d_forward(const Pool2dShape& shape, const float* input, float* output, int32_t* argmax);
void max_pool2d_backward(const Pool2dShape& shape, const float* grad_output, const int32_t* argmax, float* grad_input);
void avg_pool2d_forward(const Pool2dShape& shape, const float* input, float* output);
void avg_pool2d_backward(const Pool2dShape& shape, const float* grad_output, float* grad_input);

// dense: output = input * weight^T + bias.
void dense_forward(const DenseShape& shape, const float* input, const float* weight, const float* bias /*nullable*/,
                   float* output);
void dense_backward_data(const DenseShape& shape, const float* weight, const float* grad_output, float* grad_input);
void dense_backward_filter(const DenseShape& shape, const float* input, const float* grad_output, float* grad_weight,
                           float* grad_bias /*nullable*/);

// Elementwise activations. backward reads the forward input x and output y
// (whichever the derivative needs).
void activation_forward(Activation kind, float negative_slope, int64_t count, const float* x, float* y);
void activation_backward(Activation kind, float negative_slope, int64_t count, const float* x, const float* y,
                         const float* grad_y, float* grad_x);

// Batch norm. Training uses batch statistics, saves mean and 1/sqrt(var+eps)
// per channel for backward, and updates the running statistics (running_var
// with the unbiased batch variance, as PyTorch). Inference uses running stats.
void batch_norm_forward_training(const BatchNormShape& shape, const float* x, const float* gamma, const float* beta,
                                 float* y, float* saved_mean, float* saved_inv_std, float* running_mean,
                                 float* running_var);
void batch_norm_forward_inference(const BatchNormShape& shape, const float* x, const float* gamma, const float* beta,
                                  const float* running_mean, const float* running_var, float* y);
void batch_norm_backward(const BatchNormShape& shape, const float* x, const float* grad_y, const float* gamma,
                         const float* saved_mean, const float* saved_inv_std, float* grad_x, float* grad_gamma,
                         float* grad_beta);

// Synchronised batch norm: the training forward and backward split at their
// per-channel reductions, so that a caller can sum the partial sums of several
// batches (one per rank) between the steps and every batch is normalised with
// the statistics of all of them. `count` is the number of values per channel
// over all the batches (sum of batch * spatial); sums are [channels] doubles.
// With one batch and nothing done between the steps the results are the fused
// functions' bit for bit.
//   forward:  batch_norm_forward_sums -> sum over batches -> _squared_deviations
//             (around sums / count) -> sum over batches -> _apply
//   backward: batch_norm_backward_sums (sums [3 * channels]: dy, x - mean,
//             dy * (x - mean)) -> sum over batches -> _apply, which takes this
//             batch's sums for d gamma and d beta (the caller averages those
//             like any parameter gradient) and the total for dx.
void batch_norm_forward_sums(const BatchNormShape& shape, const float* x, double* sums);
void batch_norm_forward_squared_deviations(const BatchNormShape& shape, int64_t count, const float* x,
                                           const double* sums, double* squared_deviations);
void batch_norm_forward_apply(const BatchNormShape& shape, int64_t count, const float* x, const float* gamma,
                              const float* beta, const double* sums, const double* squared_deviations, float* y,
                              float* saved_mean, float* saved_inv_std, float* running_mean, float* running_var);
void batch_norm_backward_sums(const BatchNormShape& shape, const float* x, const float* grad_y, const float* saved_mean,
                              double* sums);
void batch_norm_backward_apply(const BatchNormShape& shape, int64_t count, const float* x, const float* grad_y,
                               const float* gamma, const float* saved_mean, const float* saved_inv_std,
                               const double* local_sums, const double* total_sums, float* grad_x, float* grad_gamma,
                               float* grad_beta);

// Dropout with a counter-based mask (see uniform01); no mask is stored.
void dropout_forward(int64_t count, float probability, uint64_t seed, const float* x, float* y);
void dropout_backward(int64_t count, float probability, uint64_t seed, const float* grad_y, float* grad_x);

// Elementwise add of two tensors; its backward is `accumulate` to each input.
void add_forward(int64_t count, const float* a, const float* b, float* y);
void accumulate(int64_t count, const float* source, float* destination);  // destination += source

// Channel concat, one input at a time: input [batch, channels, spatial] is the
// slice [channel_offset, channel_offset + channels) of y [batch, total_channels, spatial].
void concat_forward(int64_t batch, int64_t spatial, int64_t channels, int64_t channel_offset, int64_t total_channels,
                    const float* input, float* y);
void concat_backward(int64_t batch, int64_t spatial, int64_t channels, int64_t channel_offset, int64_t total_channels,
                     const float* grad_y, float* grad_input);

// Softmax over the channel axis of x [batch, channels, spatial]: each (n, s)
// column sums to 1 (spatial 1: over a row's features). backward reads y.
void softmax_forward(int64_t batch, int64_t channels, int64_t spatial, const float* x, float* y);
void softmax_backward(int64_t batch, int64_t channels, int64_t spatial, const float* y, const float* grad_y,
                      float* grad_x);

// Global average pooling: each of `planes` (batch * channels) rows of
// `spatial` floats to its mean, [N, C, H, W] -> [N, C].
void global_avg_pool_forward(int64_t planes, int64_t spatial, const float* x, float* y);
void global_avg_pool_backward(int64_t planes, int64_t spatial, const float* grad_y, float* grad_x);

// y[p, s] = a[p] * b[p, s] over `planes` rows of `spatial` floats: a gate
// [N, C] scaling b [N, C, H, W] (planes N * C), or two tensors of one shape
// (spatial 1). Either gradient may be nullptr.
void multiply_forward(int64_t planes, int64_t spatial, const float* a, const float* b, float* y);
void multiply_backward(int64_t planes, int64_t spatial, const float* a, const float* b, const float* grad_y,
                       float* grad_a, float* grad_b);

// Mixture of experts: y[n, f] = sum_e gate[n, e] * experts[e][n, f], with
// gate [batch, experts.size()] and each expert [batch, features]. Any
// gradient may be nullptr (grad_experts: one entry per expert); at most
// max_mixture_experts experts.
void mixture_forward(int64_t batch, int64_t features, const float* gate, std::span<const float* const> experts,
                     float* y);
void mixture_backward(int64_t batch, int64_t features, const float* gate, std::span<const float* const> experts,
                      const float* grad_y, float* grad_gate, std::span<float* const> grad_experts);

// The multi-head loss: every head's mean loss (unweighted) into head_losses
// [heads.size()] and every head's weighted logit gradient. Stable for logits
// of magnitude 1e4.
void multi_head_loss(int64_t batch, std::span<const LossHead> heads, float* head_losses);

// Optimizer steps over flat buffers of `count` parameters.
void sgd_update(int64_t count, const SgdParameters& parameters, float* weights, const float* grads,
                float* momentum_buffer);
void adamw_update(int64_t count, const AdamWParameters& parameters, float* weights, const float* grads,
                  float* first_moment, float* second_moment);

}  // namespace ladon::cpu
