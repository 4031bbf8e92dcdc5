// Launch wrappers of the optimizer steps (kernels in optimizer.cuh). The
// per-step scalars (AdamW's bias corrections) are folded on the host in double,
// exactly as the CPU op folds them, so both backends see the same floats.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/launch.hpp"
#include "kernels/cuda/optimizer.cuh"
#include "kernels/cuda/optimizer.hpp"

namespace ladon::cuda {
namespace detail = optimizer_detail;
namespace {

// float4 access needs every buffer at the same offset modulo 16 bytes; the
// elements before the first 16-byte boundary go scalar, as do the last count % 4.
detail::VectorSplit split_for_float4(int64_t count, std::initializer_list<const void*> buffers) {
    const auto offset = reinterpret_cast<std::uintptr_t>(*buffers.begin()) % 16;
    bool same_offset = offset % sizeof(float) == 0;
    for (const void* buffer : buffers)
        if (buffer != nullptr && reinterpret_cast<std::uintptr_t>(buffer) % 16 != offset) same_offset = false;
    detail::VectorSplit split;
    if (!same_offset) {
        split.head = count;
        return split;
    }
    split.head = std::min<int64_t>(count, static_cast<int64_t>((16 - offset) % 16 / sizeof(float)));
    split.vectors = (count - split.head) / 4;
    split.tail = count - split.head - 4 * split.vectors;
    return split;
}

// Enough blocks to cover the scalars and to fill the GPU with the float4 loop;
// past that each thread strides. 2048 blocks of 256 threads: 16 per SM on an H100.
dim3 grid_for(const detail::VectorSplit& split) {
    const int64_t work = std::max({split.head, split.tail, split.vectors, int64_t{1}});
    const int64_t blocks = std::min<int64_t>((work + detail::kThreadsPerBlock - 1) / detail::kThreadsPerBlock, 2048);
    return dim3(static_cast<unsigned>(blocks));
}

}  // namespace

void sgd_step_scalars(const ops::SgdParameters& parameters, float* scalars) {
    scalars[0] = parameters.learning_rate;
    scalars[1] = scalars[2] = 0.0f;
}

void adamw_step_scalars(const ops::AdamWParameters& parameters, float* scalars) {
    const double bias_correction1 = 1.0 - std::pow(double(parameters.beta1), double(parameters.step));
    const double bias_correction2 = 1.0 - std::pow(double(parameters.beta2), double(parameters.step));
    scalars[0] = static_cast<float>(double(parameters.learning_rate) / bias_correction1);
    scalars[1] = static_cast<float>(std::sqrt(bias_correction2));
    scalars[2] = 1.0f - parameters.learning_rate * parameters.weight_decay;
}

cudaError_t sgd_update(int64_t count, const ops::SgdParameters& parameters, float* weights, const float* grads,
                       float* momentum_buffer, cudaStream_t stream, const float* gate_losses, int gate_count,
                       const float* step_scalars) {
    if (count < 0 || gate_count < 0) return cudaErrorInvalidValue;
    if (count == 0) return cudaSuccess;
    if (parameters.momentum == 0.0f) momentum_buffer = nullptr;  // the CPU op neither reads nor writes it then
    const detail::VectorSplit split = split_for_float4(count, {weights, grads, momentum_buffer});
    const detail::SgdRule rule{parameters.learning_rate, parameters.momentum, parameters.weight_decay,
                               parameters.nesterov};
    return launch(detail::sgd_update_kernel, grid_for(split), dim3(detail::kThreadsPerBlock), 0, stream, count, split,
                  rule, weights, grads, momentum_buffer, detail::UpdateGate{gate_losses, gate_count}, step_scalars);
}

cudaError_t adamw_update(int64_t count, const ops::AdamWParameters& parameters, float* weights, const float* grads,
                         float* first_moment, float* second_moment, cudaStream_t stream, const float* gate_losses,
                         int gate_count, const float* step_scalars) {
    if (count < 0 || gate_count < 0 || parameters.step < 1) return cudaErrorInvalidValue;
    if (count == 0) return cudaSuccess;
    float scalars[kStepScalars];
    adamw_step_scalars(parameters, scalars);
    const detail::AdamWRule rule{scalars[0], scalars[1], scalars[2], parameters.beta1, parameters.beta2,
                                 parameters.epsilon};
    const detail::VectorSplit split = split_for_float4(count, {weights, grads, first_moment, second_moment});
    if (step_scalars != nullptr)
        return launch(detail::adamw_update_kernel<true>, grid_for(split), dim3(detail::kThreadsPerBlock), 0, stream,
                      count, split, rule, weights, grads, first_moment, second_moment,
                      detail::UpdateGate{gate_losses, gate_count}, step_scalars);
    return launch(detail::adamw_update_kernel<false>, grid_for(split), dim3(detail::kThreadsPerBlock), 0, stream,
                  count, split, rule, weights, grads, first_moment, second_moment,
                  detail::UpdateGate{gate_losses, gate_count}, step_scalars);
}

}  // namespace ladon::cuda
