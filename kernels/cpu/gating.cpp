// Ops that weight one tensor by another: global_avg_pool (the squeeze of a
// squeeze-and-excitation block), multiply (its excitation: a [N, C] gate
// scaling [N, C, H, W], or two tensors of one shape) and mixture (the
// gate-weighted sum of expert outputs at the core of MMoE and PLE).
//
// Parallel decomposition: one task per plane (global_avg_pool, multiply) or
// per sample (mixture). A task owns its outputs and the gradients it writes,
// and sums in a fixed order, so results do not depend on the thread count.
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>

#include "kernels/ops.hpp"

namespace ladon::cpu {
namespace {

constexpr int64_t parallel_threshold = 1 << 15;  // elements; below it one thread

void validate_planes(const char* op, int64_t planes, int64_t spatial) {
    if (planes < 0 || spatial < 1)
        throw std::invalid_argument(std::string(op) + ": expected planes >= 0 and spatial >= 1");
}

void validate_mixture(const char* op, int64_t batch, int64_t features, std::size_t experts) {
    if (batch < 0 || features < 1 || experts < 1 || experts > std::size_t(max_mixture_experts))
        throw std::invalid_argument(std::string(op) + ": expected batch >= 0, features >= 1 and 1 to " +
                                    std::to_string(max_mixture_experts) + " experts, got " + std::to_string(experts));
}

}  // namespace

void global_avg_pool_forward(int64_t planes, int64_t spatial, const float* x, float* y) {
    validate_planes("global_avg_pool_forward", planes, spatial);
    const float scale = 1.0f / float(spatial);
#pragma omp parallel for schedule(static) if (planes * spatial >= parallel_threshold)
    for (int64_t p = 0; p < planes; ++p) {
        const float* in = x + p * spatial;
        float sum = 0.0f;
        for (int64_t s = 0; s < spatial; ++s) sum += in[s];
        y[p] = sum * scale;
    }
}

void global_avg_pool_backward(int64_t planes, int64_t spatial, const float* grad_y, float* grad_x) {
    validate_planes("global_avg_pool_backward", planes, spatial);
    const float scale = 1.0f / float(spatial);
#pragma omp parallel for schedule(static) if (planes * spatial >= parallel_threshold)
    for (int64_t p = 0; p < planes; ++p) {
        const float g = grad_y[p] * scale;
        float* out = grad_x + p * spatial;
        for (int64_t s = 0; s < spatial; ++s) out[s] += g;
    }
}

void multiply_forward(int64_t planes, int64_t spatial, const float* a, const float* b, float* y) {
    validate_planes("multiply_forward", planes, spatial);
#pragma omp parallel for schedule(static) if (planes * spatial >= parallel_threshold)
    for (int64_t p = 0; p < planes; ++p) {
        const float scale = a[p];
        for (int64_t s = 0; s < spatial; ++s) y[p * spatial + s] = scale * b[p * spatial + s];
    }
}

void multiply_backward(int64_t planes, int64_t spatial, const float* a, const float* b, const float* grad_y,
                       float* grad_a, float* grad_b) {
    validate_planes("multiply_backward", planes, spatial);
#pragma omp parallel for schedule(static) if (planes * spatial >= parallel_threshold)
    for (int64_t p = 0; p < planes; ++p) {
        const float* gy = grad_y + p * spatial;
        if (grad_a != nullptr) {
            float dot = 0.0f;
            for (int64_t s = 0; s < spatial; ++s) dot += gy[s] * b[p * spatial + s];
            grad_a[p] += dot;
        }
        if (grad_b != nullptr)
            for (int64_t s = 0; s < spatial; ++s) grad_b[p * spatial + s] += gy[s] * a[p];
    }
}

void mixture_forward(int64_t batch, int64_t features, const float* gate, std::span<const float* const> experts,
                     float* y) {
    validate_mixture("mixture_forward", batch, features, experts.size());
    const auto count = int64_t(experts.size());
#pragma omp parallel for schedule(static) if (batch * features * count >= parallel_threshold)
    for (int64_t n = 0; n < batch; ++n) {
        float* out = y + n * features;
        const float* weights = gate + n * count;
        for (int64_t f = 0; f < features; ++f) out[f] = weights[0] * experts[0][n * features + f];
        for (int64_t e = 1; e < count; ++e)
            for (int64_t f = 0; f < features; ++f) out[f] += weights[e] * experts[e][n * features + f];
    }
}

void mixture_backward(int64_t batch, int64_t features, const float* gate, std::span<const float* const> experts,
                      const float* grad_y, float* grad_gate, std::span<float* const> grad_experts) {
    validate_mixture("mixture_backward", batch, features, experts.size());
    if (grad_experts.size() != experts.size())
        throw std::invalid_argument("mixture_backward: expected one expert gradient (or nullptr) per expert");
    const auto count = int64_t(experts.size());
#pragma omp parallel for schedule(static) if (batch * features * count >= parallel_threshold)
    for (int64_t n = 0; n < batch; ++n) {
        const float* gy = grad_y + n * features;
        for (int64_t e = 0; e < count; ++e) {
            const float* x = experts[e] + n * features;
            if (grad_gate != nullptr) {
                float dot = 0.0f;
                for (int64_t f = 0; f < features; ++f) dot += gy[f] * x[f];
                grad_gate[n * count + e] += dot;
            }
            if (float* gx = grad_experts[e]; gx != nullptr) {
                const float weight = gate[n * count + e];
                for (int64_t f = 0; f < features; ++f) gx[n * features + f] += weight * gy[f];
            }
        }
    }
}

}  // namespace ladon::cpu
