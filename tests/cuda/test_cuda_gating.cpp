// global_avg_pool, multiply and mixture (kernels/cuda/gating.cuh) on the
// emulator or a GPU against ladon::cpu: odd shapes that take both row
// reductions (a warp per row of 32 or more, a thread per row otherwise),
// broadcast and equal-shape multiplies, a mixture of 1 to 5 experts with some
// gradients skipped, backward passes that accumulate, and bad sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.hpp"
#include "kernels/cuda/gating.hpp"
#include "kernels/ops.hpp"

namespace ladon {
namespace {

using cuda_test::DeviceBuffer;

using cuda_test::uniform_values;

struct Planes {
    int64_t planes, spatial;
    std::string str() const { return std::to_string(planes) + " planes of " + std::to_string(spatial); }
};
// 7 x 9 and 33 (warp per row), 5 and 1 (thread per row: 1 is an equal-shape multiply).
constexpr Planes plane_shapes[] = {{3 * 5, 63}, {7, 33}, {11, 5}, {3 * 5 * 7, 1}};

class CudaGating : public cuda_test::DeviceTest {};

TEST_F(CudaGating, GlobalAvgPoolMatchesCpu) {
    for (const Planes& s : plane_shapes) {
        const std::vector<float> x = uniform_values(std::size_t(s.planes * s.spatial), 1);
        const std::vector<float> grad_y = uniform_values(std::size_t(s.planes), 2);
        const std::vector<float> initial = uniform_values(x.size(), 3);
        std::vector<float> y(std::size_t(s.planes)), grad_x = initial;
        cpu::global_avg_pool_forward(s.planes, s.spatial, x.data(), y.data());
        cpu::global_avg_pool_backward(s.planes, s.spatial, grad_y.data(), grad_x.data());
        DeviceBuffer<float> dx(x), dy(y.size()), dgy(grad_y), dgx(initial);
        ASSERT_CUDA_SUCCESS(cuda::global_avg_pool_forward(s.planes, s.spatial, dx.get(), dy.get(), nullptr));
        ASSERT_CUDA_SUCCESS(cuda::global_avg_pool_backward(s.planes, s.spatial, dgy.get(), dgx.get(), nullptr));
        cuda_test::expect_all_near(y, dy.download(), s.str() + ", forward", 1e-5f, 1e-5f);
        cuda_test::expect_all_near(grad_x, dgx.download(), s.str() + ", backward", 1e-5f, 1e-5f);
    }
}

TEST_F(CudaGating, MultiplyMatchesCpuAndAccumulatesBothGradients) {
    for (const Planes& s : plane_shapes) {
        const std::size_t count = std::size_t(s.planes * s.spatial);
        const std::vector<float> a = uniform_values(std::size_t(s.planes), 4), b = uniform_values(count, 5);
        const std::vector<float> grad_y = uniform_values(count, 6);
        const std::vector<float> initial_a = uniform_values(a.size(), 7), initial_b = uniform_values(count, 8);
        std::vector<float> y(count), grad_a = initial_a, grad_b = initial_b;
        cpu::multiply_forward(s.planes, s.spatial, a.data(), b.data(), y.data());
        cpu::multiply_backward(s.planes, s.spatial, a.data(), b.data(), grad_y.data(), grad_a.data(), grad_b.data());
        DeviceBuffer<float> da(a), db(b), dy(count), dgy(grad_y), dga(initial_a), dgb(initial_b);
        ASSERT_CUDA_SUCCESS(cuda::multiply_forward(s.planes, s.spatial, da.get(), db.get(), dy.get(), nullptr));
        ASSERT_CUDA_SUCCESS(
            cuda::multiply_backward(s.planes, s.spatial, da.get(), db.get(), dgy.get(), dga.get(), dgb.get(), nullptr));
        cuda_test::expect_all_near(y, dy.download(), s.str() + ", forward", 1e-5f, 1e-5f);
        cuda_test::expect_all_near(grad_a, dga.download(), s.str() + ", gate gradient", 1e-5f, 1e-5f);
        cuda_test::expect_all_near(grad_b, dgb.download(), s.str() + ", input gradient", 1e-5f, 1e-5f);
    }
}

TEST_F(CudaGating, MultiplyOfATensorByItselfAddsBothGradients) {
    const std::vector<float> x = {1.5f, -2.0f, 0.5f}, grad_y = {1.0f, 3.0f, -2.0f};
    DeviceBuffer<float> dx(x), dgy(grad_y), dgx(std::vector<float>(3, 0.0f));
    ASSERT_CUDA_SUCCESS(cuda::multiply_backward(3, 1, dx.get(), dx.get(), dgy.get(), dgx.get(), dgx.get(), nullptr));
    EXPECT_EQ((std::vector<float>{3.0f, -12.0f, -2.0f}), dgx.download());
}

void check_mixture(int64_t batch, int64_t features, int experts, bool skip_some) {
    const std::string what = std::to_string(batch) + "x" + std::to_string(features) + ", " + std::to_string(experts) +
                             " experts" + (skip_some ? ", some gradients skipped" : "");
    const std::size_t count = std::size_t(batch * features);
    const std::vector<float> gate = uniform_values(std::size_t(batch * experts), 9);
    const std::vector<float> grad_y = uniform_values(count, 10);
    const std::vector<float> initial_gate = uniform_values(gate.size(), 11);
    std::vector<std::vector<float>> values, grads;
    std::vector<DeviceBuffer<float>> device_values, device_grads;
    std::vector<const float*> cpu_values, gpu_values;
    std::vector<float*> cpu_grads, gpu_grads;
    for (int e = 0; e < experts; ++e) {
        values.push_back(uniform_values(count, 12u + unsigned(e)));
        grads.push_back(uniform_values(count, 40u + unsigned(e)));
        device_values.emplace_back(values.back());
        device_grads.emplace_back(grads.back());
    }
    for (int e = 0; e < experts; ++e) {
        const bool skipped = skip_some && e % 2 == 1;
        cpu_values.push_back(values[e].data());
        gpu_values.push_back(device_values[e].get());
        cpu_grads.push_back(skipped ? nullptr : grads[e].data());
        gpu_grads.push_back(skipped ? nullptr : device_grads[e].get());
    }
    std::vector<float> y(count), grad_gate = initial_gate;
    cpu::mixture_forward(batch, features, gate.data(), cpu_values, y.data());
    cpu::mixture_backward(batch, features, gate.data(), cpu_values, grad_y.data(), grad_gate.data(), cpu_grads);
    DeviceBuffer<float> dgate(gate), dy(count), dgy(grad_y), dgg(initial_gate);
    ASSERT_CUDA_SUCCESS(cuda::mixture_forward(batch, features, dgate.get(), gpu_values, dy.get(), nullptr));
    ASSERT_CUDA_SUCCESS(
        cuda::mixture_backward(batch, features, dgate.get(), gpu_values, dgy.get(), dgg.get(), gpu_grads, nullptr));
    cuda_test::expect_all_near(y, dy.download(), what + ", forward", 1e-5f, 1e-5f);
    cuda_test::expect_all_near(grad_gate, dgg.download(), what + ", gate gradient", 1e-5f, 1e-5f);
    for (int e = 0; e < experts; ++e)
        cuda_test::expect_all_near(grads[e], device_grads[e].download(),
                                   what + ", expert " + std::to_string(e) + " gradient", 1e-5f, 1e-5f);
}

TEST_F(CudaGating, MixtureMatchesCpuOnOddShapes) {
    check_mixture(3, 37, 3, false);  // warp per gate row
    check_mixture(5, 7, 5, true);    // thread per gate row
    check_mixture(2, 1, 1, false);   // one expert, one feature
}

TEST_F(CudaGating, RejectsWhatTheCpuRejects) {
    DeviceBuffer<float> buffer(4);
    EXPECT_EQ(cudaErrorInvalidValue, cuda::global_avg_pool_forward(2, 0, buffer.get(), buffer.get(), nullptr));
    EXPECT_EQ(cudaErrorInvalidValue, cuda::multiply_forward(-1, 1, buffer.get(), buffer.get(), buffer.get(), nullptr));
    const std::vector<const float*> too_many(std::size_t(ops::max_mixture_experts + 1), buffer.get());
    EXPECT_EQ(cudaErrorInvalidValue, cuda::mixture_forward(1, 1, buffer.get(), too_many, buffer.get(), nullptr));
    const std::vector<const float*> two(2, buffer.get());
    const std::vector<float*> one(1, buffer.get());
    EXPECT_EQ(cudaErrorInvalidValue,
              cuda::mixture_backward(1, 1, buffer.get(), two, buffer.get(), nullptr, one, nullptr));
}

}  // namespace
}  // namespace ladon
