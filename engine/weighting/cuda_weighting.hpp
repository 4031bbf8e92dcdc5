#pragma once
// The CUDA half of the task-weighting table (engine/weighting/weighting.hpp):
// each method's weights and gradients as kernels on the executor's stream,
// compiled with the CUDA executor (against the emulator and the CUDA runtime).
#include "engine/ops/cuda_op.hpp"
#include "engine/weighting/weighting.hpp"
#include "kernels/ops.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {

// Device memory a method works on, all [heads] unless said otherwise.
struct CudaWeightingStep {
    int heads = 0;
    const float* base_weights = nullptr;
    const float* learned = nullptr;  // [heads * parameters_per_head], in the flat parameter buffer
    ops::LossHead* loss_heads = nullptr;  // the loss's descriptors, whose .weight the loss applies
    float* weights = nullptr;             // this step's weights, copied to the host with the losses
    const float* losses = nullptr;        // after the loss
    float* gradients = nullptr;           // the learned values' gradients (overwritten)
    cudaStream_t stream = nullptr;
};

struct CudaTaskWeightingMethod {
    TaskWeighting kind;
    // Before the loss: weights into loss_heads[h].weight and weights[h].
    cudaError_t (*weights)(const CudaWeightingStep&) = nullptr;
    // After the loss: the learned values' gradients. Null: none are learned.
    cudaError_t (*gradients)(const CudaWeightingStep&) = nullptr;
};

const CudaTaskWeightingMethod& cuda_task_weighting_method(TaskWeighting kind);

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
