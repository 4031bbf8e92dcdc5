#pragma once
// Optimizer steps on the GPU: ladon::cpu::sgd_update and adamw_update
// (kernels/ops.hpp) over flat device buffers, one launch each, the same
// formulas in the same float operations. Nothing is validated here (a kernel
// cannot throw): the engine passes a momentum buffer whenever momentum != 0
// and a 1-based AdamW step, as the CPU op requires.
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/ops.hpp"

namespace ladon::cuda {

// `step_scalars` (device memory, nullable): kStepScalars floats that replace
// the per-step values folded from `parameters` (SGD: the learning rate;
// AdamW: the step size, sqrt of the second bias correction and the decay
// factor), read when the kernel runs. A captured CUDA graph replays its
// launches with the arguments they were captured with; it takes each step's
// values this way, written by sgd_step_scalars / adamw_step_scalars (the same
// folding the launches do, so both ways give the same bits).
constexpr int kStepScalars = 3;
void sgd_step_scalars(const ops::SgdParameters& parameters, float* scalars);
void adamw_step_scalars(const ops::AdamWParameters& parameters, float* scalars);

// `gate_losses` (device memory, nullable): the step's `gate_count` head
// losses. When any is not finite the launch changes nothing (weights, momenta
// and moments keep their values), so a training step can skip a bad update
// without the host reading the losses first.

cudaError_t sgd_update(int64_t count, const ops::SgdParameters& parameters, float* weights, const float* grads,
                       float* momentum_buffer /*nullable when momentum == 0*/, cudaStream_t stream,
                       const float* gate_losses = nullptr, int gate_count = 0,
                       const float* step_scalars = nullptr);

cudaError_t adamw_update(int64_t count, const ops::AdamWParameters& parameters, float* weights, const float* grads,
                         float* first_moment, float* second_moment, cudaStream_t stream, const float* gate_losses = nullptr,
                         int gate_count = 0, const float* step_scalars = nullptr);

}  // namespace ladon::cuda
