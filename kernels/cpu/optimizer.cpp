// Optimizer steps over flat parameter buffers, PyTorch's update rules
// (torch.optim.SGD with dampening 0, torch.optim.AdamW, amsgrad off).
// Elementwise, so the OpenMP split changes no result.
#include <cmath>
#include <cstdint>
#include <string>

#include "kernels/ops.hpp"
#include "ladon/error.hpp"

namespace ladon::cpu {
namespace {

// Below this many parameters a thread team costs more than the update itself.
constexpr int64_t kParallelThreshold = 1 << 15;

}  // namespace

// The momentum buffer starts at zero: momentum * 0 + g == g exactly, which is
// PyTorch's first step (buffer = g).
void sgd_update(int64_t count, const SgdParameters& parameters, float* weights, const float* grads,
                float* momentum_buffer) {
    const float learning_rate = parameters.learning_rate;
    const float momentum = parameters.momentum;
    const float weight_decay = parameters.weight_decay;
    const bool nesterov = parameters.nesterov;
    if (momentum != 0.0f && momentum_buffer == nullptr)
        throw Error("sgd_update: momentum is " + std::to_string(momentum) + " but no momentum buffer was given");
#pragma omp parallel for schedule(static) if (count >= kParallelThreshold)
    for (int64_t i = 0; i < count; ++i) {
        float gradient = grads[i] + weight_decay * weights[i];
        if (momentum != 0.0f) {
            const float buffer = momentum * momentum_buffer[i] + gradient;
            momentum_buffer[i] = buffer;
            gradient = nesterov ? gradient + momentum * buffer : buffer;
        }
        weights[i] -= learning_rate * gradient;
    }
}

// Bias corrections are per step, so they are folded into two scalars in double
// (as PyTorch does in Python): w -= step_size * m / (sqrt(v) / sqrt(bc2) + eps).
void adamw_update(int64_t count, const AdamWParameters& parameters, float* weights, const float* grads,
                  float* first_moment, float* second_moment) {
    if (parameters.step < 1)
        throw Error("adamw_update: step is " + std::to_string(parameters.step) + ", expected a 1-based count >= 1");
    const double bias_correction1 = 1.0 - std::pow(double(parameters.beta1), double(parameters.step));
    const double bias_correction2 = 1.0 - std::pow(double(parameters.beta2), double(parameters.step));
    const auto step_size = static_cast<float>(double(parameters.learning_rate) / bias_correction1);
    const auto bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
    const float decay_factor = 1.0f - parameters.learning_rate * parameters.weight_decay;
    const float beta1 = parameters.beta1, beta2 = parameters.beta2, epsilon = parameters.epsilon;
#pragma omp parallel for schedule(static) if (count >= kParallelThreshold)
    for (int64_t i = 0; i < count; ++i) {
        const float gradient = grads[i];
        const float m = beta1 * first_moment[i] + (1.0f - beta1) * gradient;
        const float v = beta2 * second_moment[i] + (1.0f - beta2) * gradient * gradient;
        first_moment[i] = m;
        second_moment[i] = v;
        const float denominator = std::sqrt(v) / bias_correction2_sqrt + epsilon;
        weights[i] = weights[i] * decay_factor - step_size * m / denominator;
    }
}

}  // namespace ladon::cpu
