// Streams run in order on the emulator: work on a created stream waits in
// its queue until something waits for it, so a missing event between two
// streams gives wrong results instead of passing by luck.
#include <cmath>
#include <vector>

#include "emu/emu_test_support.hpp"

namespace ladon::emu_test {
namespace {

constexpr int n = 64;

__global__ void fill_with(float* values, float value) { values[threadIdx.x] = value; }
__global__ void divergent_barrier(float* values) {
    if (threadIdx.x < 16) __syncthreads();
    values[threadIdx.x] = 1.0f;
}
__global__ void add_into(const float* from, float* to) { to[threadIdx.x] += from[threadIdx.x]; }

class EmuStreams : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_CUDA_SUCCESS(cudaStreamCreateWithFlags(&producer_, cudaStreamNonBlocking));
        ASSERT_CUDA_SUCCESS(cudaStreamCreateWithFlags(&consumer_, cudaStreamNonBlocking));
        ASSERT_CUDA_SUCCESS(cudaEventCreate(&produced_));
        made_.zero();
        sum_.zero();
    }
    void TearDown() override {
        cudaEventDestroy(produced_);
        cudaStreamDestroy(producer_);
        cudaStreamDestroy(consumer_);
    }
    cudaStream_t producer_ = nullptr, consumer_ = nullptr;
    cudaEvent_t produced_ = nullptr;
    DeviceBuffer<float> made_{n}, sum_{n};
};

TEST_F(EmuStreams, WorkOnACreatedStreamRunsWhenTheStreamIsSynchronised) {
    ASSERT_CUDA_SUCCESS(cuda::launch(fill_with, dim3(1), dim3(n), 0, producer_, made_.get(), 3.0f));
    EXPECT_EQ(0.0f, made_.download()[0]) << "a non-blocking stream's work has not run yet";
    ASSERT_CUDA_SUCCESS(cudaStreamSynchronize(producer_));
    EXPECT_EQ(3.0f, made_.download()[0]);
}

TEST_F(EmuStreams, AnEventOrdersTheConsumerAfterTheProducer) {
    ASSERT_CUDA_SUCCESS(cuda::launch(fill_with, dim3(1), dim3(n), 0, producer_, made_.get(), 2.0f));
    ASSERT_CUDA_SUCCESS(cudaEventRecord(produced_, producer_));
    ASSERT_CUDA_SUCCESS(cudaStreamWaitEvent(consumer_, produced_, 0));
    ASSERT_CUDA_SUCCESS(cuda::launch(add_into, dim3(1), dim3(n), 0, consumer_, made_.get(), sum_.get()));
    ASSERT_CUDA_SUCCESS(cudaStreamSynchronize(consumer_));
    for (const float value : sum_.download()) ASSERT_EQ(2.0f, value);
}

TEST_F(EmuStreams, AMissingEventGivesTheConsumerStaleData) {
    ASSERT_CUDA_SUCCESS(cuda::launch(fill_with, dim3(1), dim3(n), 0, producer_, made_.get(), 2.0f));
    ASSERT_CUDA_SUCCESS(cuda::launch(add_into, dim3(1), dim3(n), 0, consumer_, made_.get(), sum_.get()));
    ASSERT_CUDA_SUCCESS(cudaStreamSynchronize(consumer_));
    for (const float value : sum_.download()) ASSERT_EQ(0.0f, value) << "the producer had not run";
    ASSERT_CUDA_SUCCESS(cudaDeviceSynchronize());
    EXPECT_EQ(2.0f, made_.download()[0]);
}

// The legacy default stream waits for blocking streams, not non-blocking ones.
TEST_F(EmuStreams, TheDefaultStreamWaitsForBlockingStreamsOnly) {
    cudaStream_t blocking = nullptr;
    ASSERT_CUDA_SUCCESS(cudaStreamCreate(&blocking));
    DeviceBuffer<float> other(n);
    other.zero();
    ASSERT_CUDA_SUCCESS(cuda::launch(fill_with, dim3(1), dim3(n), 0, blocking, other.get(), 5.0f));
    ASSERT_CUDA_SUCCESS(cuda::launch(fill_with, dim3(1), dim3(n), 0, producer_, made_.get(), 7.0f));
    EXPECT_EQ(5.0f, other.download()[0]) << "cudaMemcpy on the default stream ran the blocking stream first";
    EXPECT_EQ(0.0f, made_.download()[0]) << "but not the non-blocking one";
    ASSERT_CUDA_SUCCESS(cudaStreamDestroy(blocking));
}

TEST_F(EmuStreams, DestroyingAStreamRunsItsWork) {
    cudaStream_t stream = nullptr;
    ASSERT_CUDA_SUCCESS(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    ASSERT_CUDA_SUCCESS(cuda::launch(fill_with, dim3(1), dim3(n), 0, stream, made_.get(), 4.0f));
    ASSERT_CUDA_SUCCESS(cudaStreamDestroy(stream));
    EXPECT_EQ(4.0f, made_.download()[0]);
}

// Configuration errors are the launch's; a fault while queued work runs is
// reported by the call that waits for it, naming the kernel.
TEST_F(EmuStreams, ErrorsOfQueuedWorkReachTheCallThatWaits) {
    EXPECT_EQ(cudaErrorInvalidConfiguration,
              cuda::launch(fill_with, dim3(1), dim3(2048), 0, producer_, made_.get(), 1.0f));
    EXPECT_EQ(cudaErrorInvalidConfiguration, cudaGetLastError());
    ASSERT_CUDA_SUCCESS(cudaMemcpyAsync(made_.get(), sum_.get(), n * sizeof(float), cudaMemcpyDeviceToDevice, producer_));
    EXPECT_EQ(cudaErrorInvalidValue, cudaMemcpyAsync(made_.get(), sum_.get(), 2 * n * sizeof(float),
                                                     cudaMemcpyDeviceToDevice, producer_));
    cudaGetLastError();
    ASSERT_CUDA_SUCCESS(cudaStreamSynchronize(producer_));

    ASSERT_CUDA_SUCCESS(cuda::launch(divergent_barrier, dim3(1), dim3(32), 0, producer_, made_.get()));
    EXPECT_EQ(cudaErrorLaunchFailure, cudaStreamSynchronize(producer_));
    EXPECT_NE(std::string::npos, emu::last_error_message().find("divergent_barrier")) << emu::last_error_message();
    EXPECT_EQ(cudaErrorLaunchFailure, cudaGetLastError());
}

}  // namespace
}  // namespace ladon::emu_test
