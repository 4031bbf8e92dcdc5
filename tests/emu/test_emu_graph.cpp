// Stream capture and graph replay on the emulator: work is recorded, not run,
// while a stream captures; a launch of the graph runs it, reading its
// pointers' memory at that time, as on a GPU.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/cuda/launch.hpp"

namespace {

__global__ void scale_add(int n, const float* x, float a, float* y) {
    const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < n) y[i] += a * x[i];
}

TEST(EmuGraph, CapturedWorkRunsOnlyWhenTheGraphLaunchesAndReadsPinnedInputsThen) {
    constexpr int n = 37;
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    float *x = nullptr, *y = nullptr, *host = nullptr;
    ASSERT_EQ(cudaMalloc(&x, n * sizeof(float)), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&y, n * sizeof(float)), cudaSuccess);
    ASSERT_EQ(cudaMallocHost(reinterpret_cast<void**>(&host), n * sizeof(float)), cudaSuccess);
    ASSERT_EQ(cudaMemset(y, 0, n * sizeof(float)), cudaSuccess);
    for (int i = 0; i < n; ++i) host[i] = 1.0f;

    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    cudaStreamCaptureStatus status{};
    ASSERT_EQ(cudaStreamIsCapturing(stream, &status), cudaSuccess);
    EXPECT_EQ(status, cudaStreamCaptureStatusActive);
    ASSERT_EQ(cudaMemcpyAsync(x, host, n * sizeof(float), cudaMemcpyHostToDevice, stream), cudaSuccess);
    ASSERT_EQ(ladon::cuda::launch(scale_add, dim3(2), dim3(32), 0, stream, n, x, 2.0f, y), cudaSuccess);
    cudaGraph_t graph = nullptr;
    ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    std::vector<float> out(n);
    ASSERT_EQ(cudaMemcpy(out.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(out[0], 0.0f) << "captured work must not run";

    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    // The host may change the pinned input only once the replay has read it
    // (the emulator's stream runs the replay here, a GPU at some point).
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    for (int i = 0; i < n; ++i) host[i] = 10.0f;  // the next replay copies the new values
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(out.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    for (int i = 0; i < n; ++i) EXPECT_EQ(out[i], 2.0f * 1.0f + 2.0f * 10.0f) << i;

    EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
    EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
    cudaFree(x);
    cudaFree(y);
    cudaFreeHost(host);
    cudaStreamDestroy(stream);
}

TEST(EmuGraph, SynchronisingACapturingStreamFailsAndInvalidatesTheCapture) {
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    EXPECT_EQ(cudaStreamSynchronize(stream), cudaErrorStreamCaptureUnsupported);
    cudaGraph_t graph = nullptr;
    EXPECT_EQ(cudaStreamEndCapture(stream, &graph), cudaErrorStreamCaptureInvalidated);
    EXPECT_EQ(graph, nullptr);
    cudaGetLastError();
    // The default stream cannot capture.
    EXPECT_EQ(cudaStreamBeginCapture(nullptr, cudaStreamCaptureModeThreadLocal), cudaErrorStreamCaptureUnsupported);
    cudaGetLastError();
    cudaStreamDestroy(stream);
}

}  // namespace
