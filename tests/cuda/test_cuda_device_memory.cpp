// The owners of device resources (kernels/cuda/device_memory.hpp) on a GPU or
// the emulator: what they hold, that a move hands it over, and that failures
// name the call.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_test_support.hpp"
#include "kernels/cuda/device_memory.hpp"
#include "ladon/error.hpp"

namespace ladon {
namespace {

class CudaDeviceMemory : public cuda_test::DeviceTest {};

TEST_F(CudaDeviceMemory, DeviceBufferRoundTripsAndZeroes) {
    const std::vector<int32_t> values{3, -1, 4, 1, -5, 9, 2};
    cuda::DeviceBuffer<int32_t> buffer(values);
    EXPECT_EQ(buffer.size(), values.size());
    EXPECT_EQ(buffer.bytes(), values.size() * sizeof(int32_t));
    EXPECT_EQ(buffer.download(), values);
    buffer.zero();
    EXPECT_EQ(buffer.download(), std::vector<int32_t>(values.size(), 0));
}

TEST_F(CudaDeviceMemory, AZeroSizeBufferHoldsNothingAndCopiesNothing) {
    cuda::DeviceBuffer<float> empty(std::size_t{0});
    EXPECT_EQ(empty.get(), nullptr);
    empty.upload(std::vector<float>{});
    empty.zero();
    EXPECT_TRUE(empty.download().empty());
}

TEST_F(CudaDeviceMemory, AMoveHandsTheMemoryOver) {
    cuda::DeviceBuffer<float> first(std::vector<float>{1.0f, 2.0f, 3.0f});
    float* const memory = first.get();
    cuda::DeviceBuffer<float> second(std::move(first));
    EXPECT_EQ(second.get(), memory);
    EXPECT_EQ(second.size(), 3u);
    EXPECT_EQ(first.get(), nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state is the contract
    EXPECT_EQ(first.size(), 0u);      // NOLINT(bugprone-use-after-move)
    cuda::DeviceBuffer<float> third(1);
    third = std::move(second);  // releases third's own element
    EXPECT_EQ(third.get(), memory);
    EXPECT_EQ(third.download(), (std::vector<float>{1.0f, 2.0f, 3.0f}));
}

TEST_F(CudaDeviceMemory, AnUploadOfTheWrongSizeIsRefused) {
    cuda::DeviceBuffer<float> buffer(4);
    try {
        buffer.upload(std::vector<float>(5, 0.0f));
        FAIL() << "expected ladon::Error";
    } catch (const Error& error) {
        EXPECT_NE(std::string(error.what()).find("5 elements into a buffer of 4"), std::string::npos) << error.what();
    }
}

TEST_F(CudaDeviceMemory, AnAllocationTooLargeForTheDeviceNamesTheCallAndTheError) {
    const std::size_t huge = std::size_t{1} << 50;  // a petabyte: more than any device has
    cudaError_t error = cudaSuccess;
    const auto tried = cuda::DeviceBuffer<unsigned char>::try_allocate(huge, error);
    EXPECT_EQ(error, cudaErrorMemoryAllocation);
    EXPECT_EQ(tried.get(), nullptr);
    EXPECT_EQ(tried.size(), 0u);
    try {
        const cuda::DeviceBuffer<unsigned char> buffer(huge, "the test's buffer");
        FAIL() << "expected ladon::Error";
    } catch (const Error& thrown) {
        const std::string message = thrown.what();
        EXPECT_EQ(message.rfind("the test's buffer: cudaErrorMemoryAllocation", 0), 0u) << message;
    }
    cudaGetLastError();  // the failed allocations' error, read
}

TEST_F(CudaDeviceMemory, PinnedBufferHoldsItsElements) {
    cuda::PinnedBuffer<double> pinned(5);
    ASSERT_NE(pinned.get(), nullptr);
    EXPECT_EQ(pinned.span().size(), 5u);
    for (double& value : pinned.span()) value = 2.5;
    const cuda::PinnedBuffer<double> moved(std::move(pinned));
    EXPECT_EQ(moved.get()[4], 2.5);
    EXPECT_EQ(pinned.get(), nullptr);  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(pinned.size(), 0u);      // NOLINT(bugprone-use-after-move)
}

TEST_F(CudaDeviceMemory, ACapturedGraphReplaysOnTheStreamAndEventsTimeIt) {
    const cuda::Stream stream(cudaStreamNonBlocking);
    const cuda::Event start(cudaEventDefault), stop(cudaEventDefault);
    cuda::DeviceBuffer<int32_t> buffer(std::vector<int32_t>(6, 7));
    cuda::GraphExec graph;
    EXPECT_FALSE(graph);
    {
        cuda::StreamCapture capture(stream.get());
        ASSERT_CUDA_SUCCESS(cudaMemsetAsync(buffer.get(), 0, buffer.bytes(), stream.get()));
        graph = cuda::GraphExec::instantiate(capture.end());
    }
    EXPECT_EQ(buffer.download(), std::vector<int32_t>(6, 7)) << "captured work must not run";
    ASSERT_TRUE(graph);
    ASSERT_CUDA_SUCCESS(cudaEventRecord(start.get(), stream.get()));
    ASSERT_CUDA_SUCCESS(cudaGraphLaunch(graph.get(), stream.get()));
    ASSERT_CUDA_SUCCESS(cudaEventRecord(stop.get(), stream.get()));
    ASSERT_CUDA_SUCCESS(cudaEventSynchronize(stop.get()));
    float ms = -1.0f;
    ASSERT_CUDA_SUCCESS(cudaEventElapsedTime(&ms, start.get(), stop.get()));
    EXPECT_GE(ms, 0.0f);
    EXPECT_EQ(buffer.download(), std::vector<int32_t>(6, 0));
}

TEST_F(CudaDeviceMemory, ACaptureAbandonedByAnExceptionLeavesTheStreamUsable) {
    const cuda::Stream stream(cudaStreamNonBlocking);
    cuda::DeviceBuffer<int32_t> buffer(std::vector<int32_t>(3, 7));
    try {
        cuda::StreamCapture capture(stream.get());
        ASSERT_CUDA_SUCCESS(cudaMemsetAsync(buffer.get(), 0, buffer.bytes(), stream.get()));
        throw std::runtime_error("enqueueing failed");
    } catch (const std::runtime_error&) {
    }
    cudaStreamCaptureStatus status{};
    ASSERT_CUDA_SUCCESS(cudaStreamIsCapturing(stream.get(), &status));
    EXPECT_EQ(status, cudaStreamCaptureStatusNone);
    EXPECT_CUDA_SUCCESS(cudaGetLastError());
    ASSERT_CUDA_SUCCESS(cudaStreamSynchronize(stream.get()));
    EXPECT_EQ(buffer.download(), std::vector<int32_t>(3, 7)) << "the abandoned capture's work must never run";
}

}  // namespace
}  // namespace ladon
