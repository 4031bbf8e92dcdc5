// In the ASan build (test_emu_asan: plain-static shared memory, one worker)
// an out-of-bounds index in a kernel is an AddressSanitizer report, as an
// illegal address would be on the GPU. Elsewhere these tests are skipped.
#include "emu/emu_test_support.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define LADON_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LADON_TEST_ASAN 1
#endif
#endif

namespace ladon::emu_test {
namespace {

constexpr unsigned tile_size = 32;

// Thread 32 of 33 writes one past the shared tile. UBSan, which sees the
// array's type, reports it first; without UBSan here, what remains is ASan's
// view of the plain-static storage (TLS storage it would not check).
__global__ void __attribute__((no_sanitize("undefined"))) overflow_static_shared(float* output) {
    LADON_SHARED(float, tile, [tile_size]);
    float* const elements = &tile[0];
    elements[threadIdx.x] = 1.0f;
    __syncthreads();
    output[threadIdx.x] = tile[0];
}

__global__ void overflow_static_shared_index(float* output) {
    LADON_SHARED(float, tile, [tile_size]);
    tile[threadIdx.x] = 1.0f;
    __syncthreads();
    output[threadIdx.x] = tile[0];
}

__global__ void overflow_dynamic_shared(float* output) {
    LADON_DYNAMIC_SHARED(float, buffer);
    buffer[threadIdx.x] = 1.0f;
    output[threadIdx.x] = buffer[0];
}

__global__ void overflow_device_memory(float* output) { output[threadIdx.x] = 1.0f; }

class EmuSanitizer : public ::testing::Test {
protected:
    void SetUp() override {
#if defined(LADON_TEST_ASAN)
        // Re-run the test binary for the death test: workers are threads,
        // and fork() keeps only the calling one.
        GTEST_FLAG_SET(death_test_style, "threadsafe");
#else
        GTEST_SKIP() << "needs the AddressSanitizer build (test_emu_asan)";
#endif
    }
};

TEST_F(EmuSanitizer, StaticSharedOverflowIsAGlobalBufferOverflow) {
    DeviceBuffer<float> output(tile_size + 1);
    EXPECT_DEATH(cuda::launch(overflow_static_shared, dim3(1), dim3(tile_size + 1), 0, nullptr, output.get()),
                 "global-buffer-overflow");
}

TEST_F(EmuSanitizer, StaticSharedIndexPastTheArrayIsAnUndefinedBehaviourReport) {
    DeviceBuffer<float> output(tile_size + 1);
    EXPECT_DEATH(cuda::launch(overflow_static_shared_index, dim3(1), dim3(tile_size + 1), 0, nullptr, output.get()),
                 "index 32 out of bounds for type 'float \\[32\\]'");
}

TEST_F(EmuSanitizer, DynamicSharedOverflowIsAHeapBufferOverflow) {
    DeviceBuffer<float> output(17);
    EXPECT_DEATH(cuda::launch(overflow_dynamic_shared, dim3(1), dim3(17), 16 * sizeof(float), nullptr, output.get()),
                 "heap-buffer-overflow");
}

TEST_F(EmuSanitizer, DeviceMemoryOverflowIsAHeapBufferOverflow) {
    DeviceBuffer<float> output(31);
    EXPECT_DEATH(cuda::launch(overflow_device_memory, dim3(1), dim3(32), 0, nullptr, output.get()),
                 "heap-buffer-overflow");
}

}  // namespace
}  // namespace ladon::emu_test
