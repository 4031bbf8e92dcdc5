#pragma once
// The CUDA half of the op registry (engine/ops/op.hpp): each op file's CUDA
// forward and backward, compiled with the CUDA executor (LADON_OPS_CUDA: once
// against the emulator, once against the CUDA runtime), where the buffers in
// OpBuffers are device memory and every kernel is enqueued on one stream.
#include "engine/ops/op.hpp"
#include "kernels/cuda/device.hpp"
#include "kernels/cuda/gemm.hpp"

#if defined(LADON_EMU)
#define LADON_CUDA_BACKEND_NAMESPACE emulated
#else
#define LADON_CUDA_BACKEND_NAMESPACE device
#endif

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {

struct CudaOpStep : OpStep {
    cudaStream_t stream = nullptr;
    // A conv or dense layer whose following activation runs in its epilogue
    // (engine/fusion.hpp) writes that activation's output instead of its own.
    ops::Activation epilogue = ops::Activation::identity;
    float epilogue_slope = 0.0f;
    float* epilogue_output = nullptr;
    // An activation computed in the producer's epilogue: its input was never
    // stored, so backward reads the sign from y (relu, leaky relu).
    bool fused_into_producer = false;
    // The producer's backward also runs this activation's (it reads the
    // activation's output and output gradient itself): this one does nothing.
    bool backward_in_producer = false;
    // Where the producer's backward runs its fused activation's: that
    // activation's output gradient (its output is epilogue_output).
    const float* epilogue_gradient = nullptr;
    uint64_t* dropout_seeds = nullptr;  // device, per node: the step's seeds (CUDA graphs replay them)
    cuda::MatmulPrecision matmul = cuda::MatmulPrecision::fp32;  // the executor's precision: dense layers, convolutions
    std::size_t workspace_bytes = 0;                              // of buffers.workspace
    // Backward of an op that stores_input_gradients: bit k set when this is
    // the first write of inputs[k]'s gradient (engine/gradient_plan.hpp), so
    // it overwrites (the slot holds the last step's values) instead of adding.
    uint32_t first_gradient_write = 0;

    bool stores_gradient(std::size_t input) const { return (first_gradient_write >> input & 1u) != 0; }

    // The workspace as a GEMM's split-K scratch.
    cuda::GemmScratch gemm_scratch() const { return {buffers.workspace, workspace_bytes}; }
};

struct CudaOpDefinition {
    OpKind kind;
    cudaError_t (*forward)(const CudaOpStep&) = nullptr;
    cudaError_t (*backward)(const CudaOpStep&) = nullptr;
    // The device scratch (one buffer, shared by every op: they run in turn
    // on one stream) the op's kernels need at this precision.
    std::size_t (*workspace_bytes)(const Node&, cuda::MatmulPrecision) = nullptr;
    // Whether backward honours CudaOpStep::first_gradient_write for every
    // input; for an op that does not, the executor zeroes the gradient slots
    // it writes first before its backward runs.
    bool stores_input_gradients = false;
    // Whether backward runs the fused activation's backward too (reading
    // CudaOpStep::epilogue_output and epilogue_gradient), saving that pass.
    bool backward_takes_epilogue = false;
};

const CudaOpDefinition& cuda_op_definition(OpKind kind);

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
