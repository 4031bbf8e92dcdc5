// fixed: each head's loss weighted by its configured weight, nothing learned.
#if !defined(LADON_OPS_CUDA)
#include <algorithm>

#include "engine/weighting/weighting.hpp"

namespace ladon::engine {

void base_weights_as_they_are(std::span<const float> base, std::span<const float>, std::span<float> weights) {
    std::copy(base.begin(), base.end(), weights.begin());
}

double no_loss_term(std::span<const float>, std::span<const float>, std::span<const float>, std::span<float>) {
    return 0.0;
}

extern const TaskWeightingMethod fixed_weighting{
    .kind = TaskWeighting::fixed, .name = "fixed", .weights = base_weights_as_they_are, .loss_term = no_loss_term};

}  // namespace ladon::engine

#else  // the CUDA half
#include "engine/weighting/cuda_weighting.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {
namespace {

// The loss's descriptors hold the base weights from the start.
cudaError_t weights(const CudaWeightingStep& s) {
    return cudaMemcpyAsync(s.weights, s.base_weights, std::size_t(s.heads) * sizeof(float), cudaMemcpyDeviceToDevice,
                           s.stream);
}

}  // namespace

extern const CudaTaskWeightingMethod fixed_cuda_weighting{TaskWeighting::fixed, weights, nullptr};

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
#endif
