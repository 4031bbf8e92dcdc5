// The emulated CUDA backend's losses, bit for bit, over 200 steps of
// fashion_mtl's model and optimizer (examples/fashion_mtl.toml) at batch 2,
// against a recorded hash (the CPU
// backend's counterpart, at the configured batch of 128, is in
// tests/cpu/test_engine_loss_bits.cpp). The emulated kernels are plain C++
// without OpenBLAS, so these bits are the same on every x86-64 machine.
// Re-recorded only for a deliberate change of a kernel's summation order,
// named in the commit: last, the conv bias gradient's split channel sums
// (kernels/cuda/channel_reduce.cuh, issue 14).
#include <gtest/gtest.h>

#include <cstdio>

#include "cpu/loss_bits_support.hpp"
#include "engine/cuda_executor.hpp"
#include "engine/graph.hpp"

namespace ladon::testing {
namespace {

TEST(CudaExecutorEmulatedLossBits, FashionMtlTwoHundredStepsGiveTheRecordedLossBits) {
    RunConfig config = load_run_config("examples/fashion_mtl.toml");
    config.training.batch_size = 2;
    config.data.train_size = 400;  // 200 steps: one epoch
    const auto data = make_train_dataset(config.data);
    engine::CudaExecutor executor(engine::build_graph(config.model, config.training.batch_size),
                                  {config.training.seed, config.training.optimizer.kind, ladon::TaskWeighting::fixed,
                                   true, ladon::Precision::fp32},
                                  0);
    const std::vector<float> losses = loss_sequence(executor, *data, config, 200);
    ASSERT_EQ(losses.size(), 200u * 4u);
    const uint64_t hash = bits_hash(losses);
    std::printf("loss hash 0x%016llx\n", static_cast<unsigned long long>(hash));
    EXPECT_EQ(hash, 0xbfd433e0c263f7b9ull) << "the emulated CUDA backend's losses changed";
}

}  // namespace
}  // namespace ladon::testing
