#pragma once
// Device code of the optimizer steps (host API: optimizer.hpp). Each kernel
// applies one elementwise rule, written once as a __device__ function of one
// parameter and applied to float4 lanes and to scalars alike, so the vector
// and scalar paths give the same bits.
#include <cstdint>

#include "kernels/cuda/device.hpp"

namespace ladon::cuda::optimizer_detail {

constexpr int kThreadsPerBlock = 256;

// A flat buffer split for float4 access: `head` scalars up to the first
// 16-byte boundary, `vectors` float4s, then `tail` scalars. Only used when
// every buffer of the update has the same offset modulo 16 bytes; otherwise
// head = count and everything goes scalar.
struct VectorSplit {
    int64_t head = 0;
    int64_t vectors = 0;
    int64_t tail = 0;
};

// Grid-stride loops over the head scalars, the float4s and the tail scalars;
// every element is touched by exactly one thread. The head is long only on the
// all-scalar path (buffers misaligned against each other).
template <typename Update>
__device__ __forceinline__ void for_each_element(int64_t count, const VectorSplit& split, Update update) {
    const int64_t thread = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
    const int64_t stride = int64_t{gridDim.x} * blockDim.x;
    for (int64_t i = thread; i < split.head; i += stride) update.scalar(i);
    for (int64_t v = thread; v < split.vectors; v += stride) update.vector(split.head + 4 * v);
    for (int64_t i = thread; i < split.tail; i += stride) update.scalar(count - split.tail + i);
}

struct SgdRule {
    float learning_rate, momentum, weight_decay;
    bool nesterov;
    __device__ __forceinline__ void operator()(float& weight, float grad, float& buffer) const {
        float gradient = grad + weight_decay * weight;
        if (momentum != 0.0f) {
            const float b = momentum * buffer + gradient;
            buffer = b;
            gradient = nesterov ? gradient + momentum * b : b;
        }
        weight -= learning_rate * gradient;
    }
};

struct AdamWRule {
    float step_size, bias_correction2_sqrt, decay_factor, beta1, beta2, epsilon;
    __device__ __forceinline__ void operator()(float& weight, float grad, float& m_io, float& v_io) const {
        const float m = beta1 * m_io + (1.0f - beta1) * grad;
        const float v = beta2 * v_io + (1.0f - beta2) * grad * grad;
        m_io = m;
        v_io = v;
        const float denominator = sqrtf(v) / bias_correction2_sqrt + epsilon;
        weight = weight * decay_factor - step_size * m / denominator;
    }
};

// The rules bound to their buffers, one element or one aligned float4 at a time.
struct SgdElements {
    SgdRule rule;
    float* weights;
    const float* grads;
    float* momentum_buffer;  // nullptr when momentum == 0: a dummy zero stands in
    __device__ __forceinline__ void scalar(int64_t i) const {
        float buffer = momentum_buffer != nullptr ? momentum_buffer[i] : 0.0f;
        rule(weights[i], grads[i], buffer);
        if (momentum_buffer != nullptr) momentum_buffer[i] = buffer;
    }
    __device__ __forceinline__ void vector(int64_t i) const {
        float4 w = *reinterpret_cast<const float4*>(weights + i);
        const float4 g = *reinterpret_cast<const float4*>(grads + i);
        float4 b = momentum_buffer != nullptr ? *reinterpret_cast<const float4*>(momentum_buffer + i)
                                              : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        rule(w.x, g.x, b.x);
        rule(w.y, g.y, b.y);
        rule(w.z, g.z, b.z);
        rule(w.w, g.w, b.w);
        *reinterpret_cast<float4*>(weights + i) = w;
        if (momentum_buffer != nullptr) *reinterpret_cast<float4*>(momentum_buffer + i) = b;
    }
};

struct AdamWElements {
    AdamWRule rule;
    float* weights;
    const float* grads;
    float* first_moment;
    float* second_moment;
    __device__ __forceinline__ void scalar(int64_t i) const {
        rule(weights[i], grads[i], first_moment[i], second_moment[i]);
    }
    __device__ __forceinline__ void vector(int64_t i) const {
        float4 w = *reinterpret_cast<const float4*>(weights + i);
        const float4 g = *reinterpret_cast<const float4*>(grads + i);
        float4 m = *reinterpret_cast<const float4*>(first_moment + i);
        float4 v = *reinterpret_cast<const float4*>(second_moment + i);
        rule(w.x, g.x, m.x, v.x);
        rule(w.y, g.y, m.y, v.y);
        rule(w.z, g.z, m.z, v.z);
        rule(w.w, g.w, m.w, v.w);
        *reinterpret_cast<float4*>(weights + i) = w;
        *reinterpret_cast<float4*>(first_moment + i) = m;
        *reinterpret_cast<float4*>(second_moment + i) = v;
    }
};

// The training step's losses, read before any element is touched: a
// non-finite loss means the step's gradients are garbage, so every thread
// returns and the parameters and moments stay as they were. `values` nullptr:
// always open. Lets a device step skip a bad update without the host waiting
// for the losses.
struct UpdateGate {
    const float* values = nullptr;
    int count = 0;
    __device__ __forceinline__ bool open() const {
        for (int i = 0; i < count; ++i)
            if (!isfinite(values[i])) return false;
        return true;
    }
};

// Every parameter in one launch: threads grid-stride over the scalar head,
// the float4 body and the scalar tail (for_each_element), no shared memory.
__global__ void __launch_bounds__(kThreadsPerBlock)
    sgd_update_kernel(int64_t count, VectorSplit split, SgdRule rule, float* __restrict__ weights,
                      const float* __restrict__ grads, float* __restrict__ momentum_buffer, UpdateGate gate,
                      const float* __restrict__ step_scalars) {
    if (!gate.open()) return;
    const SgdRule step_rule = step_scalars == nullptr ? rule
                                                      : SgdRule{step_scalars[0], rule.momentum, rule.weight_decay,
                                                                rule.nesterov};
    for_each_element(count, split, SgdElements{step_rule, weights, grads, momentum_buffer});
}

// As sgd_update_kernel, with both moments. Two instantiations, so the one
// that takes its step scalars from device memory keeps no more values live
// across the loop than the other (IEEE division is a called subroutine here,
// and every extra live register around the call became a spill).
template <bool kScalarsFromDevice>
__global__ void __launch_bounds__(kThreadsPerBlock)
    adamw_update_kernel(int64_t count, VectorSplit split, AdamWRule rule, float* __restrict__ weights,
                        const float* __restrict__ grads, float* __restrict__ first_moment,
                        float* __restrict__ second_moment, UpdateGate gate, const float* __restrict__ step_scalars) {
    if (!gate.open()) return;
    if constexpr (kScalarsFromDevice) {
        rule.step_size = step_scalars[0];
        rule.bias_correction2_sqrt = step_scalars[1];
        rule.decay_factor = step_scalars[2];
    }
    for_each_element(count, split, AdamWElements{rule, weights, grads, first_moment, second_moment});
}

}  // namespace ladon::cuda::optimizer_detail
