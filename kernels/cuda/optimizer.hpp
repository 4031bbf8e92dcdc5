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

// `gate_losses` (device memory, nullable): the step's `gate_count` head
// losses. When any is not finite the launch changes nothing (weights, momenta
// and moments keep their values), so a training step can skip a bad update
// without the host reading the losses first.

cudaError_t sgd_update(int64_t count, const ops::SgdParameters& parameters, float* weights, const float* grads,
                       float* momentum_buffer /*nullable when momentum == 0*/, cudaStream_t stream,
                       const float* gate_losses = nullptr, int gate_count = 0);

cudaError_t adamw_update(int64_t count, const ops::AdamWParameters& parameters, float* weights, const float* grads,
                         float* first_moment, float* second_moment, cudaStream_t stream, const float* gate_losses = nullptr,
                         int gate_count = 0);

}  // namespace ladon::cuda
