// rlw, random loss weighting (Lin, Ye, Xu, Shi and Zhang, "Reasonable
// Effectiveness of Random Weighting", TMLR 2022): each step, every head's
// configured weight times softmax(z)_h, z_h ~ N(0, 1) drawn afresh, so the
// random weights sum to 1 over the heads (as the paper and LibMTL; the total
// loss is then on the scale of one task's, not of their sum). Nothing is
// learned. The draws come from (seed, step, head) through ops::mix64 and
// Box-Muller, on the host; the CUDA half copies them in with the step's seeds.
#if !defined(LADON_OPS_CUDA)
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "engine/weighting/weighting.hpp"
#include "kernels/ops.hpp"

namespace ladon::engine {
namespace {

// z_h = sqrt(-2 ln(1 - u1)) cos(2 pi u2), u1 and u2 ops::uniform01 of the
// step's key at 2h and 2h + 1 (1 - u1 > 0: uniform01 is below 1).
double normal_draw(uint64_t key, std::size_t head) {
    const double u1 = ops::uniform01(key, 2 * head), u2 = ops::uniform01(key, 2 * head + 1);
    return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

// The softmax in three passes over the heads, drawing again rather than
// keeping the draws: a training step allocates nothing.
void step_base(uint64_t seed, int64_t step, std::span<const float> configured, std::span<float> base) {
    const uint64_t key = ops::mix64(seed ^ ops::mix64(uint64_t(step) ^ 0x524C57ull));  // "RLW"
    double largest = -std::numeric_limits<double>::infinity(), sum = 0.0;
    for (std::size_t h = 0; h < configured.size(); ++h) largest = std::max(largest, normal_draw(key, h));
    for (std::size_t h = 0; h < configured.size(); ++h) sum += std::exp(normal_draw(key, h) - largest);
    for (std::size_t h = 0; h < configured.size(); ++h)
        base[h] = float(double(configured[h]) * std::exp(normal_draw(key, h) - largest) / sum);
}

}  // namespace

// Weights and loss term are fixed weighting's: the step's base as it is.
extern const TaskWeightingMethod rlw_weighting{.kind = TaskWeighting::rlw,
                                               .name = "rlw",
                                               .step_base = step_base,
                                               .weights = base_weights_as_they_are,
                                               .loss_term = no_loss_term};

}  // namespace ladon::engine

#else  // the CUDA half
#include "engine/weighting/cuda_weighting.hpp"
#include "kernels/cuda/task_weights.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {
namespace {

// The step's base weights (copied in with the step's seeds) into the loss's
// descriptors and the step's weights.
cudaError_t weights(const CudaWeightingStep& s) {
    return cuda::set_task_weights(s.heads, s.base_weights, nullptr, s.loss_heads, s.weights, s.stream);
}

}  // namespace

extern const CudaTaskWeightingMethod rlw_cuda_weighting{TaskWeighting::rlw, weights, nullptr};

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
#endif
