#pragma once
// A training step captured once as a CUDA graph and replayed: the CUDA
// executor's only use of graph capture. The step's changing values (dropout
// seeds, optimizer scalars) live in pinned memory that the graph copies in,
// so the caller refreshes them before each replay.
#include <cstdint>
#include <functional>

#include "engine/ops/cuda_op.hpp"
#include "kernels/cuda/device_memory.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {

class CapturedStep {
public:
    bool captured() const { return bool(exec_); }
    // Records what `enqueue` puts on `stream` (nothing runs) and instantiates it.
    void capture(cudaStream_t stream, const std::function<void()>& enqueue) {
        cuda::StreamCapture capture(stream, "CUDA backend: cudaStreamBeginCapture");
        enqueue();
        const cuda::Graph graph = capture.end("CUDA backend: cudaStreamEndCapture");
        exec_ = cuda::GraphExec::instantiate(graph, "CUDA backend: cudaGraphInstantiate");
    }
    // Enqueues one run of the captured step on `stream`.
    void launch(cudaStream_t stream) {
        cuda::check(cudaGraphLaunch(exec_.get(), stream), "CUDA backend: cudaGraphLaunch (the training step)");
        ++launches_;
    }
    int64_t launches() const { return launches_; }

private:
    cuda::GraphExec exec_;
    int64_t launches_ = 0;
};

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
