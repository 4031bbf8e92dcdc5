#pragma once
// Device code of the fused multi-head loss (host API: multi_head_loss.hpp).
// Losses are computed in double, as the CPU op does: a softmax row's loss is
// logsumexp(x) - q.x, two numbers near 1e4 for logits of 1e4 whose difference
// float would lose. The loss is a few thousand logits per step, so the slower
// double rate should cost little next to the network (not yet measured).
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/ops.hpp"

namespace ladon::cuda::multi_head_loss_detail {

constexpr int kWarpSize = 32;
constexpr int kWarpsPerBlock = 8;
constexpr int kThreadsPerBlock = kWarpsPerBlock * kWarpSize;
constexpr int kRowsPerWarp = 4;  // rows a warp handles per block: fewer blocks to sum, enough blocks to spread
constexpr int64_t kRowsPerBlock = int64_t{kWarpsPerBlock} * kRowsPerWarp;

constexpr int64_t row_blocks(int64_t batch) { return batch <= 0 ? 1 : (batch + kRowsPerBlock - 1) / kRowsPerBlock; }

__device__ __forceinline__ double warp_sum(double value) {
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
    return value;
}

__device__ __forceinline__ float warp_max(float value) {
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
        value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
    return value;
}

__device__ __forceinline__ double quiet_nan() { return __longlong_as_double(0x7ff8000000000000LL); }

__device__ __forceinline__ bool is_present(const ops::LossHead& head, int64_t sample) {
    return head.mask == nullptr || head.mask[sample] != 0.0f;  // NaN counts as present, as on the CPU
}

// One softmax cross-entropy row, the whole warp together: lanes stride the
// columns, the max and the exp-sum meet through xor shuffles (every lane ends
// with both), then each lane writes its columns' gradient softmax - q. Returns
// the row's loss on every lane. Must be called by all 32 lanes.
__device__ double softmax_cross_entropy_row(const float* __restrict__ logits, int64_t width, float target,
                                            double smoothing, double grad_scale, float* __restrict__ grad, int lane) {
    float lane_max = -INFINITY;
    for (int64_t j = lane; j < width; j += kWarpSize) lane_max = fmaxf(lane_max, logits[j]);
    const double max_logit = warp_max(lane_max);
    double lane_exp_sum = 0.0;
    for (int64_t j = lane; j < width; j += kWarpSize) lane_exp_sum += exp(double(logits[j]) - max_logit);
    const double log_sum_exp = max_logit + log(warp_sum(lane_exp_sum));

    // A label that is no integer in [0, width) matches no column: the engine
    // validates labels, this only keeps a bad one from going unnoticed.
    const bool label_valid = target >= 0.0f && target < float(width) && floorf(target) == target;
    const int64_t label = label_valid ? int64_t(target) : -1;
    const double off_target = smoothing / double(width);
    const double on_target = 1.0 - smoothing + off_target;
    double lane_target_dot = 0.0;
    for (int64_t j = lane; j < width; j += kWarpSize) {
        const double q = j == label ? on_target : off_target;
        lane_target_dot += q * double(logits[j]);
        const double softmax = exp(double(logits[j]) - log_sum_exp);
        grad[j] = label_valid ? float(grad_scale * (softmax - q)) : 0.0f;
    }
    const double target_dot = warp_sum(lane_target_dot);
    return label_valid ? log_sum_exp - target_dot : quiet_nan();
}

// The elementwise kinds: each lane adds its columns' loss terms to its own
// sum (the warp reduces once, after all rows) and writes their gradient.
__device__ double elementwise_row(const ops::LossHead& head, const float* __restrict__ logits,
                                  const float* __restrict__ targets, double grad_scale, float* __restrict__ grad,
                                  int lane) {
    double sum = 0.0;
    const double beta = head.beta;
    for (int64_t j = lane; j < head.width; j += kWarpSize) {
        const double x = logits[j], t = targets[j];
        double slope;
        switch (head.kind) {
            case ops::LossKind::sigmoid_binary_cross_entropy: {
                // Stable BCEWithLogits: max(x, 0) - x t + log1p(exp(-|x|)).
                const double exp_negative_abs = exp(-fabs(x));
                sum += fmax(x, 0.0) - x * t + log1p(exp_negative_abs);
                const double sigmoid =
                    x >= 0.0 ? 1.0 / (1.0 + exp_negative_abs) : exp_negative_abs / (1.0 + exp_negative_abs);
                slope = sigmoid - t;
                break;
            }
            case ops::LossKind::mean_squared_error: {
                const double difference = x - t;
                sum += difference * difference;
                slope = 2.0 * difference;
                break;
            }
            case ops::LossKind::smooth_l1: {
                const double difference = x - t;
                const double magnitude = fabs(difference);
                if (magnitude < beta) {
                    sum += 0.5 * difference * difference / beta;
                    slope = difference / beta;
                } else {
                    sum += magnitude - 0.5 * beta;
                    slope = difference > 0.0 ? 1.0 : -1.0;
                }
                break;
            }
            default:  // unknown kind: the engine never builds one
                sum = quiet_nan();
                slope = 0.0;
                break;
        }
        grad[j] = float(grad_scale * slope);
    }
    return sum;
}

// Grid (row_blocks(batch), num_heads), kThreadsPerBlock threads. Block (b, h)
// owns rows [b, b + 1) * kRowsPerBlock of head h; warp w takes every
// kWarpsPerBlock-th of them, one row at a time, lanes striding the columns.
// 1. The block counts head h's present samples itself (__syncthreads_count over
//    the whole mask: batch is small), since every gradient is scaled by it.
// 2. Rows: loss into per-lane double sums, gradient written (0 if masked).
// 3. Lanes reduce by xor shuffles, warps in order through shared memory, and
//    thread 0 stores the block's partial. The block that arrives last at head
//    h's counter (atomicInc after __threadfence) sums the partials in block
//    order, so the result does not depend on which block that is, divides by
//    the present count and resets the counter (atomicInc wraps it to 0).
//    This "last block" pattern keeps the loss at one launch with no second
//    reduction kernel; the only atomic is on an integer, so nothing depends on
//    block order. `partials` is not __restrict__: the last block reads what
//    other blocks wrote.
__global__ void __launch_bounds__(kThreadsPerBlock)
    multi_head_loss_kernel(int64_t batch, const ops::LossHead* __restrict__ heads, float* __restrict__ head_losses,
                           double* partials, unsigned* arrivals) {
    LADON_SHARED(double, warp_sums, [kWarpsPerBlock]);
    LADON_SHARED(bool, is_last_block, );
    const int head_index = int(blockIdx.y);
    const ops::LossHead head = heads[head_index];
    const int lane = int(threadIdx.x) % kWarpSize, warp = int(threadIdx.x) / kWarpSize;
    const unsigned blocks = gridDim.x;

    int64_t present = 0;  // the same on every thread: the loop trip count is uniform
    for (int64_t base = 0; base < batch; base += kThreadsPerBlock) {
        const int64_t sample = base + threadIdx.x;
        present += __syncthreads_count(sample < batch && is_present(head, sample));
    }
    const bool softmax = head.kind == ops::LossKind::softmax_cross_entropy;
    const double denominator = double(present) * (softmax ? 1.0 : double(head.width));
    const double grad_scale = present > 0 ? double(head.weight) / denominator : 0.0;

    double lane_loss = 0.0;
    const int64_t first_row = int64_t{blockIdx.x} * kRowsPerBlock;
    const int64_t end_row = min(first_row + kRowsPerBlock, batch);
    for (int64_t row = first_row + warp; row < end_row; row += kWarpsPerBlock) {
        const float* logits = head.logits + row * head.width;
        float* grad = head.grad_logits + row * head.width;
        if (!is_present(head, row)) {  // warp-uniform: the targets of a missing sample are never read
            for (int64_t j = lane; j < head.width; j += kWarpSize) grad[j] = 0.0f;
        } else if (softmax) {
            const double row_loss = softmax_cross_entropy_row(logits, head.width, head.targets[row],
                                                              head.label_smoothing, grad_scale, grad, lane);
            if (lane == 0) lane_loss += row_loss;
        } else {
            lane_loss += elementwise_row(head, logits, head.targets + row * head.width, grad_scale, grad, lane);
        }
    }

    const double warp_loss = warp_sum(lane_loss);
    if (lane == 0) warp_sums[warp] = warp_loss;
    __syncthreads();
    if (threadIdx.x == 0) {
        double block_loss = 0.0;
        for (int w = 0; w < kWarpsPerBlock; ++w) block_loss += warp_sums[w];
        partials[int64_t{head_index} * blocks + blockIdx.x] = block_loss;
        __threadfence();  // the partial is visible to every block before the counter moves
        is_last_block = atomicInc(&arrivals[head_index], blocks - 1) == blocks - 1;
    }
    __syncthreads();
    if (is_last_block && warp == 0) {
        // Lane l sums partials l, l + 32, ... in order, then a fixed xor tree.
        // volatile: read from memory, not from a cache filled before the fence.
        const volatile double* head_partials = partials + int64_t{head_index} * blocks;
        double sum = 0.0;
        for (unsigned b = unsigned(lane); b < blocks; b += kWarpSize) sum += head_partials[b];
        sum = warp_sum(sum);
        if (lane == 0) head_losses[head_index] = present > 0 ? float(sum / denominator) : 0.0f;
    }
}

}  // namespace ladon::cuda::multi_head_loss_detail
