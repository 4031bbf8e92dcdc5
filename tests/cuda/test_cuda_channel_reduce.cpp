// Per-channel sums (kernels/cuda/channel_reduce.cuh, the conv bias gradient)
// on the emulator or a GPU against a double-precision loop: odd shapes, one
// and many blocks per channel, float4 and scalar loads, no workspace; the sum
// is added to what `out` held; bit-identical under every schedule.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.hpp"
#include "kernels/cuda/channel_reduce.hpp"

namespace ladon {
namespace {

using cuda_test::DeviceBuffer;

struct Shape {
    int64_t batch, channels, spatial;
    std::string str() const {
        return std::to_string(batch) + "x" + std::to_string(channels) + "x" + std::to_string(spatial);
    }
};

std::vector<float> random_values(std::size_t size, unsigned seed) {
    std::mt19937 generator(seed);
    std::uniform_real_distribution<float> distribution(-1.0f, 1.0f);
    std::vector<float> values(size);
    for (float& v : values) v = distribution(generator);
    return values;
}

// start[c] + sum of x[n, c, s], in double.
std::vector<double> expected_sums(const Shape& s, const std::vector<float>& x, const std::vector<float>& start) {
    std::vector<double> sums(start.begin(), start.end());
    for (int64_t n = 0; n < s.batch; ++n)
        for (int64_t c = 0; c < s.channels; ++c)
            for (int64_t j = 0; j < s.spatial; ++j)
                sums[std::size_t(c)] += x[std::size_t((n * s.channels + c) * s.spatial + j)];
    return sums;
}

// The device's out after add_channel_sums onto `start`, x placed `offset`
// floats into its buffer (1 breaks the 16-byte alignment).
std::vector<float> device_sums(const Shape& s, const std::vector<float>& x, const std::vector<float>& start,
                               bool with_workspace, std::size_t offset = 0) {
    std::vector<float> placed(offset, 0.0f);
    placed.insert(placed.end(), x.begin(), x.end());
    DeviceBuffer<float> dx(placed), out(start);
    const std::size_t workspace_floats = cuda::channel_sums_workspace_bytes(s.batch, s.channels, s.spatial) / 4;
    DeviceBuffer<float> workspace(std::max<std::size_t>(1, workspace_floats));
    EXPECT_EQ(cudaSuccess, cuda::add_channel_sums(s.batch, s.channels, s.spatial, dx.get() + offset, out.get(),
                                                  with_workspace ? workspace.get() : nullptr, nullptr))
        << cuda_test::last_error_message();
    return out.download();
}

class CudaChannelReduce : public cuda_test::DeviceTest {};

TEST_F(CudaChannelReduce, SumsMatchDoubleOnOddShapesWithAndWithoutWorkspace) {
    const std::vector<Shape> shapes = {
        {3, 5, 7},         // one block per channel, scalar
        {2, 3, 4 * 33},    // float4
        {5, 3, 4099},      // 21 blocks per channel, ragged last chunk
        {3, 2, 4 * 1031},  // several blocks of float4 units
        {1, 1, 1},
    };
    for (const Shape& s : shapes) {
        const std::vector<float> x = random_values(std::size_t(s.batch * s.channels * s.spatial), 1);
        const std::vector<float> start = random_values(std::size_t(s.channels), 2);
        const std::vector<double> expected = expected_sums(s, x, start);
        for (const bool with_workspace : {true, false})
            for (const std::size_t offset : {std::size_t{0}, std::size_t{1}}) {
                const std::vector<float> actual = device_sums(s, x, start, with_workspace, offset);
                const std::string what = s.str() + (with_workspace ? " split" : " one block per channel") +
                                         (offset ? ", unaligned" : "");
                for (std::size_t c = 0; c < expected.size(); ++c)
                    EXPECT_NEAR(expected[c], actual[c], 2e-6 * double(s.batch * s.spatial)) << what << " channel " << c;
            }
    }
    EXPECT_GT(cuda::channel_sums_workspace_bytes(5, 3, 4099), 0u) << "the 5x3x4099 case should split";
    EXPECT_EQ(0u, cuda::channel_sums_workspace_bytes(3, 5, 7));
}

TEST_F(CudaChannelReduce, SplitSumsAreBitIdenticalUnderEverySchedule) {
    const Shape s{5, 3, 4099};
    const std::vector<float> x = random_values(std::size_t(s.batch * s.channels * s.spatial), 3);
    const std::vector<float> start(std::size_t(s.channels), 0.0f);
    const std::vector<float> first = device_sums(s, x, start, true);
    cuda_test::for_each_schedule([&](const std::string& schedule) {
        const std::vector<float> again = device_sums(s, x, start, true);
        EXPECT_EQ(0, std::memcmp(first.data(), again.data(), first.size() * sizeof(float))) << schedule;
    });
}

TEST_F(CudaChannelReduce, BadSizesAreRefused) {
    DeviceBuffer<float> buffer(4);
    EXPECT_EQ(cudaErrorInvalidValue, cuda::add_channel_sums(-1, 2, 2, buffer.get(), buffer.get(), nullptr, nullptr));
    EXPECT_EQ(cudaErrorInvalidValue,
              cuda::add_channel_sums(int64_t{1} << 20, 1 << 11, 1, buffer.get(), buffer.get(), nullptr, nullptr));
    EXPECT_EQ(cudaSuccess, cuda::add_channel_sums(0, 2, 2, buffer.get(), buffer.get(), nullptr, nullptr));
}

}  // namespace
}  // namespace ladon
