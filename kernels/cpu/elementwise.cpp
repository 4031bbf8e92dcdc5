// Elementwise ops: activations, add, accumulate. Every element is independent,
// so the results do not depend on the thread count. Pointers are not declared
// __restrict: the executor may run activations and adds in place (y == x).
#include <cmath>
#include <cstdint>

#include "kernels/ops.hpp"

namespace ladon::cpu {
namespace {

// Below this many elements, starting an OpenMP team costs more than the loop.
constexpr int64_t parallel_threshold = 1 << 15;

// One tight loop per activation (the switch sits outside) so each compiles to
// a branch-free, vectorisable body.
template <typename Function>
void for_each_index(int64_t count, Function function) {
#pragma omp parallel for schedule(static) if (count >= parallel_threshold)
    for (int64_t i = 0; i < count; ++i) function(i);
}

// Written so that exp never overflows: for large |v| the result saturates to
// 0 or 1 instead of passing through inf / inf.
inline float stable_sigmoid(float v) {
    if (v >= 0.0f) return 1.0f / (1.0f + std::exp(-v));
    float e = std::exp(v);
    return e / (1.0f + e);
}

}  // namespace

void activation_forward(Activation kind, float negative_slope, int64_t count, const float* x, float* y) {
    switch (kind) {
        case Activation::identity:
            for_each_index(count, [=](int64_t i) { y[i] = x[i]; });
            return;
        case Activation::relu:
            // x < 0 (not !(x > 0)) so NaN passes through, as in PyTorch: a
            // diverging run must reach the loss as NaN, not be masked to 0.
            for_each_index(count, [=](int64_t i) { y[i] = x[i] < 0.0f ? 0.0f : x[i]; });
            return;
        case Activation::leaky_relu:
            for_each_index(count, [=](int64_t i) { y[i] = x[i] > 0.0f ? x[i] : negative_slope * x[i]; });
            return;
        case Activation::sigmoid:
            for_each_index(count, [=](int64_t i) { y[i] = stable_sigmoid(x[i]); });
            return;
        case Activation::tanh:
            for_each_index(count, [=](int64_t i) { y[i] = std::tanh(x[i]); });
            return;
    }
}

// ReLU-like derivatives read x (the kink is defined at x = 0, derivative 0
// there, as PyTorch); sigmoid and tanh read y, which saves recomputing exp.
void activation_backward(Activation kind, float negative_slope, int64_t count, const float* x, const float* y,
                         const float* grad_y, float* grad_x) {
    switch (kind) {
        case Activation::identity:
            for_each_index(count, [=](int64_t i) { grad_x[i] += grad_y[i]; });
            return;
        case Activation::relu:
            // grad_y[i] is loaded whatever the select picks: a load on one side
            // only is a branch to GCC (it might fault), and the loop would not
            // vectorise.
            for_each_index(count, [=](int64_t i) {
                const float g = grad_y[i];
                grad_x[i] += x[i] > 0.0f ? g : 0.0f;
            });
            return;
        case Activation::leaky_relu:
            for_each_index(count,
                           [=](int64_t i) { grad_x[i] += x[i] > 0.0f ? grad_y[i] : negative_slope * grad_y[i]; });
            return;
        case Activation::sigmoid:
            for_each_index(count, [=](int64_t i) { grad_x[i] += grad_y[i] * y[i] * (1.0f - y[i]); });
            return;
        case Activation::tanh:
            for_each_index(count, [=](int64_t i) { grad_x[i] += grad_y[i] * (1.0f - y[i] * y[i]); });
            return;
    }
}

void add_forward(int64_t count, const float* a, const float* b, float* y) {
    for_each_index(count, [=](int64_t i) { y[i] = a[i] + b[i]; });
}

void accumulate(int64_t count, const float* source, float* destination) {
    for_each_index(count, [=](int64_t i) { destination[i] += source[i]; });
}

}  // namespace ladon::cpu
