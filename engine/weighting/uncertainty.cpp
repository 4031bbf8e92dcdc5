// uncertainty (Kendall, Gal and Cipolla, 2018): a learned log-variance s per
// head; the head's weight is base * exp(-s) and the total loss gains + s, so
// d total / d s = 1 - base * exp(-s) * loss. The CUDA half runs the same
// float formulas in kernels/cuda/task_weights.cu.
#if !defined(LADON_OPS_CUDA)
#include <cmath>

#include "engine/weighting/weighting.hpp"

namespace ladon::engine {
namespace {

void weights(std::span<const float> base, std::span<const float> log_variance, std::span<float> weights) {
    for (std::size_t h = 0; h < base.size(); ++h) weights[h] = base[h] * std::exp(-log_variance[h]);
}

double loss_term(std::span<const float> losses, std::span<const float> weights, std::span<const float> log_variance,
                 std::span<float> gradients) {
    double total = 0.0;
    for (std::size_t h = 0; h < losses.size(); ++h) {
        total += log_variance[h];
        gradients[h] = 1.0f - weights[h] * losses[h];
    }
    return total;
}

}  // namespace

extern const TaskWeightingMethod uncertainty_weighting{.kind = TaskWeighting::uncertainty,
                                                       .name = "uncertainty",
                                                       .parameters_per_head = 1,
                                                       .parameter_name = "log_variance",
                                                       .initial_value = 0.0f,
                                                       .weights = weights,
                                                       .loss_term = loss_term};

}  // namespace ladon::engine

#else  // the CUDA half
#include "engine/weighting/cuda_weighting.hpp"
#include "kernels/cuda/task_weights.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {
namespace {

cudaError_t weights(const CudaWeightingStep& s) {
    return cuda::set_task_weights(s.heads, s.base_weights, s.learned, s.loss_heads, s.weights, s.stream);
}

cudaError_t gradients(const CudaWeightingStep& s) {
    return cuda::task_weight_gradients(s.heads, s.loss_heads, s.losses, s.gradients, s.stream);
}

}  // namespace

extern const CudaTaskWeightingMethod uncertainty_cuda_weighting{TaskWeighting::uncertainty, weights, gradients};

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
#endif
