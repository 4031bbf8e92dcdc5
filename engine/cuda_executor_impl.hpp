#pragma once
// The CUDA executor's private state (engine/cuda_executor.hpp), shared by
// its two files: cuda_executor_memory.cpp (the device, the memory plan in one
// allocation, the copies in and out) and cuda_executor.cpp (the steps).
#include <fmt/format.h>

#include <string>
#include <vector>

#include "engine/captured_step.hpp"
#include "engine/cuda_executor.hpp"
#include "engine/fusion.hpp"
#include "engine/gradient_plan.hpp"
#include "engine/ops/cuda_op.hpp"
#include "kernels/cuda/device_memory.hpp"
#include "kernels/cuda/gemm.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {
namespace cuda_executor_detail {

using cuda::describe;

// Every failure reads "CUDA backend: what: cudaErrorX: text".
inline void check(cudaError_t error, const char* what) {
    if (error != cudaSuccess) cuda::fail(error, fmt::format("CUDA backend: {}", what));
}

inline std::string mib(std::size_t bytes) { return fmt::format("{:.1f} MiB", double(bytes) / (1024.0 * 1024.0)); }

// Regions of the one device allocation, each 256-byte aligned like cudaMalloc's.
struct Layout {
    struct Region {
        const char* name;
        std::size_t bytes;
        std::size_t offset = 0;
    };
    std::vector<Region> regions;
    std::size_t total = 0;
    int add(const char* name, std::size_t bytes) {
        total = (total + 255) / 256 * 256;
        regions.push_back({name, bytes, total});
        total += bytes;
        return int(regions.size()) - 1;
    }
};

}  // namespace cuda_executor_detail

// Declaration order is release order reversed: the graph goes before the
// memory it names, the stream last.
struct CudaExecutor::Impl {
    int device = 0;
    cuda::MatmulPrecision matmul = cuda::MatmulPrecision::tf32;  // of dense layers and convolutions
    std::string device_name;
    cuda::Stream stream;
    // The next step's batch, copied in while this step runs (train_step's
    // `next`): on its own stream into next_batch, which the step that trains
    // on it moves into place on `stream`. next_free orders the copy after the
    // move that emptied next_batch; next_copied the move after the copy.
    cuda::Stream copy_stream;
    cuda::Event next_copied, next_free;
    const Batch* staged = nullptr;  // the batch in next_batch, or being copied there
    cuda::DeviceBuffer<unsigned char> memory;  // the one device allocation
    cuda_executor_detail::Layout layout;
    ArenaPlan plan;

    // Device buffers (views into `memory`).
    float *parameters = nullptr, *gradients = nullptr, *optimizer_state = nullptr, *state = nullptr;
    float* next_batch = nullptr;  // input, targets and masks, as a Batch holds them
    float *activations = nullptr, *gradient_arena = nullptr, *saved = nullptr, *workspace = nullptr;
    int32_t* argmax = nullptr;
    float *targets = nullptr, *masks = nullptr, *head_losses = nullptr, *head_weights = nullptr;
    float *base_weights = nullptr, *group_scratch = nullptr;
    ops::LossHead* heads = nullptr;
    void* loss_scratch = nullptr;
    std::size_t workspace_bytes = 0, loss_scratch_bytes = 0;
    cuda::GemmScratch gemm_scratch() const { return {workspace, workspace_bytes}; }

    // Pinned host memory: the step's results out.
    cuda::PinnedBuffer<float> pinned;
    float *losses_host = nullptr, *weights_host = nullptr, *outputs_host = nullptr;
    std::vector<int64_t> output_offsets;  // per head, floats into outputs_host
    int64_t output_floats = 0;
    mutable bool outputs_current = false;

    // Each step's values that change from step to step (dropout seeds per
    // node; the optimizer's folded scalars for the model and the
    // log-variances), written to pinned memory by the host and copied to the
    // device at the start of the step, so a captured graph replays with them.
    cuda::PinnedBuffer<unsigned char> pinned_step;
    uint64_t* seeds_host = nullptr;  // in pinned_step, [nodes]
    float* scalars_host = nullptr;   // in pinned_step, [2 * kStepScalars]
    float* base_weights_host = nullptr;  // in pinned_step, [heads]: a per-step draw (TaskWeightingMethod::step_base)
    uint64_t* seeds_device = nullptr;
    float* scalars_device = nullptr;

    // The captured training step (use_graphs: after one plain step).
    bool use_graphs = true;
    CapturedStep captured;
    int64_t plain_steps = 0;
    cuda::Event profile_start, profile_stop;  // profile()'s clock, made at its first use

    FusionPlan fusion;  // engine/fusion.hpp
    // Per node: the inputs whose gradient its backward writes first, as
    // CudaOpStep::first_gradient_write (ops that store), and the gradient
    // slots to zero before it (ops that only add). No other pass zeroes the
    // gradient arena.
    std::vector<uint32_t> first_gradient_write;
    std::vector<std::vector<int>> zero_before_backward;  // tensor indices
    OpBuffers buffers;  // views of the device buffers, for the ops' CUDA functions

    // A node's step for its op's CUDA functions (engine/ops/cuda_op.hpp).
    CudaOpStep op_step(const Graph& graph, std::size_t i, bool training, uint64_t seed) const;
    // A head group's GEMMs, in place of its dense nodes' own.
    cudaError_t forward_group(const Graph& graph, std::size_t i, int g);
    cudaError_t backward_group(const Graph& graph, std::size_t i, int g);
    void open_device(int index);
};

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
