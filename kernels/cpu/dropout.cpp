// Dropout with a counter-based mask: element i is kept when
// uniform01(seed, i) >= probability. The mask is a pure function of (seed, i),
// so backward redraws it instead of storing it, any thread count gives the same
// mask, and the CUDA backend draws the same one.
#include <cstdint>

#include "kernels/ops.hpp"

namespace ladon::cpu {
namespace {

constexpr int64_t parallel_threshold = 1 << 15;

// Computed in float, as the CUDA kernel does, so both scale by the same value.
// probability >= 1 drops everything; the scale is then never used, but 0 keeps
// inf out of the arithmetic.
inline float keep_scale(float probability) { return probability < 1.0f ? 1.0f / (1.0f - probability) : 0.0f; }

}  // namespace

void dropout_forward(int64_t count, float probability, uint64_t seed, const float* x, float* y) {
    const float scale = keep_scale(probability);
#pragma omp parallel for schedule(static) if (count >= parallel_threshold)
    for (int64_t i = 0; i < count; ++i) y[i] = uniform01(seed, uint64_t(i)) >= probability ? x[i] * scale : 0.0f;
}

void dropout_backward(int64_t count, float probability, uint64_t seed, const float* grad_y, float* grad_x) {
    const float scale = keep_scale(probability);
#pragma omp parallel for schedule(static) if (count >= parallel_threshold)
    for (int64_t i = 0; i < count; ++i)
        grad_x[i] += uniform01(seed, uint64_t(i)) >= probability ? grad_y[i] * scale : 0.0f;
}

}  // namespace ladon::cpu
