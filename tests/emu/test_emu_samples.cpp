// The sample kernels nvcc also compiles (sample_kernels.cuh), run on the
// emulator against plain loops: a tiled SGEMM on sizes that fit no tile, and a
// row sum with warp shuffles and dynamic shared memory in two types; and the
// tiled SGEMM's __launch_bounds__, which the emulator knows from nvcc's PTX.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "emu/emu_test_support.hpp"
#include "emu/sample_kernels.cuh"
#include "kernels/emu/launch_bounds.hpp"

namespace ladon::emu_test {
namespace {

std::vector<float> ramp(std::size_t size, float scale) {
    std::vector<float> values(size);
    for (std::size_t i = 0; i < size; ++i) values[i] = scale * static_cast<float>(static_cast<int>(i % 17) - 8);
    return values;
}

// Compiled by g++ alone: nvcc never saw it, so no bound is known.
__global__ void unbounded(float* values) { values[threadIdx.x] = 0.0f; }

// tiled_sgemm (sample_kernels.cuh) declares __launch_bounds__(256); nvcc's
// PTX of the same source (nvcc_smoke.cu) says `.maxntid 256, 1, 1`, which
// the build turned into the emulator's table.
TEST(EmuSampleKernels, ABlockAboveTheKernelsLaunchBoundsIsRefused) {
#if !defined(LADON_EMU_LAUNCH_BOUNDS)
    GTEST_SKIP() << "built without nvcc: no __launch_bounds__ known here (CI's CUDA build has them)";
#else
    const samples::SgemmShape shape{32, 32, 32};
    DeviceBuffer<float> a(32 * 32), b(32 * 32), c(32 * 32);
    EXPECT_EQ(256u, emu::detail::launch_bound(reinterpret_cast<const void*>(&samples::tiled_sgemm)));
    EXPECT_EQ(cudaErrorLaunchOutOfResources, cuda::launch(samples::tiled_sgemm, dim3(2, 1), dim3(16, 32), 0, nullptr,
                                                          shape, a.get(), b.get(), c.get()));
    const std::string message = emu::last_error_message();
    for (const char* fragment : {"tiled_sgemm", "block (16,32,1)", "512 threads per block exceed the kernel's "
                                                                   "__launch_bounds__ of 256"})
        EXPECT_NE(std::string::npos, message.find(fragment)) << "missing \"" << fragment << "\" in: " << message;
    EXPECT_EQ(cudaErrorLaunchOutOfResources, cudaGetLastError());
    // At the bound it runs; a kernel nvcc never compiled has no known bound.
    EXPECT_CUDA_SUCCESS(samples::launch_tiled_sgemm(shape, a.get(), b.get(), c.get(), nullptr));
    EXPECT_EQ(0u, emu::detail::launch_bound(reinterpret_cast<const void*>(&unbounded)));
#endif
}

TEST(EmuSampleKernels, TiledSgemmMatchesPlainLoopOnOddSizes) {
    const samples::SgemmShape shape{37, 53, 29};
    const std::vector<float> a = ramp(shape.m * shape.k, 0.25f), b = ramp(shape.k * shape.n, 0.5f);
    DeviceBuffer<float> device_a(a), device_b(b), device_c(shape.m * shape.n);

    ASSERT_CUDA_SUCCESS(samples::launch_tiled_sgemm(shape, device_a.get(), device_b.get(), device_c.get(), nullptr));

    const std::vector<float> c = device_c.download();
    double max_error = 0;
    for (std::int64_t i = 0; i < shape.m; ++i)
        for (std::int64_t j = 0; j < shape.n; ++j) {
            double expected = 0;
            for (std::int64_t p = 0; p < shape.k; ++p) expected += double{a[i * shape.k + p]} * b[p * shape.n + j];
            max_error = std::max(max_error, std::abs(expected - c[i * shape.n + j]));
        }
    EXPECT_LT(max_error, 1e-4);
}

template <typename T>
void expect_row_sums(unsigned threads) {
    const std::int64_t rows = 5, columns = 301;
    std::vector<T> x(rows * columns);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<T>(static_cast<int>(i % 7) - 3) / 4;
    DeviceBuffer<T> device_x(x), device_sums(rows);

    ASSERT_CUDA_SUCCESS(samples::launch_row_sum<T>(rows, columns, device_x.get(), device_sums.get(), threads, nullptr));

    const std::vector<T> sums = device_sums.download();
    for (std::int64_t r = 0; r < rows; ++r) {
        double expected = 0;
        for (std::int64_t c = 0; c < columns; ++c) expected += x[r * columns + c];
        EXPECT_NEAR(expected, sums[r], 1e-4) << "row " << r << " with " << threads << " threads";
    }
}

TEST(EmuSampleKernels, RowSumWithShufflesAndDynamicSharedMemoryInFloatAndDouble) {
    expect_row_sums<float>(128);
    expect_row_sums<float>(32);
    expect_row_sums<double>(96);
}

}  // namespace
}  // namespace ladon::emu_test
