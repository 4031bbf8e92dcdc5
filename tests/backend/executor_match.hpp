#pragma once
// What the emulated CUDA executor tests compare against the CPU executor.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/cpu_executor.hpp"
#include "engine/cuda_executor.hpp"

namespace ladon::engine::testing_match {

inline double relative(double a, double b) { return std::abs(a - b) / std::max({std::abs(a), std::abs(b), 1e-6}); }

// One forward, loss and backward on both backends: the losses, then every
// parameter gradient within 1e-5 of the largest. Returns that largest.
inline double one_step_gradients_match(CpuExecutor& cpu, CudaExecutor& cuda, const Batch& batch) {
    cpu.forward(batch, true);
    cuda.forward(batch, true);
    EXPECT_NEAR(cpu.compute_loss(batch), cuda.compute_loss(batch), 1e-5);
    cpu.backward();
    cuda.backward();
    cuda.pull_state();
    double scale = 0.0;
    for (float g : cpu.gradients()) scale = std::max(scale, double(std::abs(g)));
    for (const BufferSlice& slice : cpu.graph().parameters)
        for (int64_t i = 0; i < slice.count; ++i) {
            EXPECT_NEAR(cpu.gradients()[slice.offset + i], cuda.gradients()[slice.offset + i], 1e-5 * scale)
                << slice.name << "[" << i << "]";
            if (::testing::Test::HasFailure()) return scale;
        }
    return scale;
}

}  // namespace ladon::engine::testing_match
