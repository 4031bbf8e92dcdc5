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
#include <numbers>
#include <vector>

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

void step_base(uint64_t seed, int64_t step, std::span<const float> configured, std::span<float> base) {
    const uint64_t key = ops::mix64(seed ^ ops::mix64(uint64_t(step) ^ 0x524C57ull));  // "RLW"
    std::vector<double> z(configured.size());
    for (std::size_t h = 0; h < z.size(); ++h) z[h] = normal_draw(key, h);
    const double largest = z.empty() ? 0.0 : *std::max_element(z.begin(), z.end());
    double sum = 0.0;
    for (double& value : z) sum += value = std::exp(value - largest);
    for (std::size_t h = 0; h < z.size(); ++h) base[h] = float(double(configured[h]) * z[h] / sum);
}

void weights(std::span<const float> base, std::span<const float>, std::span<float> weights) {
    std::copy(base.begin(), base.end(), weights.begin());
}

double loss_term(std::span<const float>, std::span<const float>, std::span<const float>, std::span<float>) {
    return 0.0;
}

}  // namespace

extern const TaskWeightingMethod rlw_weighting{
    .kind = TaskWeighting::rlw, .name = "rlw", .step_base = step_base, .weights = weights, .loss_term = loss_term};

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
