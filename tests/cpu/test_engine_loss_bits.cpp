// The CPU backend's losses, bit for bit, over 200 steps of fashion_mtl as
// examples/fashion_mtl.toml configures it (AdamW, batch 128, 2 threads),
// against the hash recorded before the engine's refactoring. OpenBLAS picks
// its GEMM kernels per processor, so the bits hold per OpenBLAS core; on a
// core without a recorded hash only the first step's losses are compared
// (to 1e-5: every core agrees there; later steps drift apart by rounding),
// and the hash to record is printed.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstdio>
#include <string>

#include "cpu/loss_bits_support.hpp"
#include "engine/cpu_executor.hpp"
#include "engine/graph.hpp"

extern "C" char* openblas_get_corename(void);

namespace ladon::testing {
namespace {

struct RecordedHash {
    const char* core;
    uint64_t hash;
};
constexpr RecordedHash recorded_hashes[] = {
    {"Haswell", 0x02a153d1dad54aa0ull},  // OPENBLAS_CORETYPE=Haswell, as on our AMD EPYC machines
};
// The first step's losses: left, right, left_box, footwear.
constexpr float recorded_first_losses[4] = {2.30303836f, 2.30466461f, 0.124836825f, 0.687291443f};

TEST(EngineLossBits, FashionMtlTwoHundredCpuStepsGiveTheRecordedLossBits) {
    const RunConfig config = load_run_config("examples/fashion_mtl.toml");
    const auto data = make_train_dataset(config.data);
    omp_set_num_threads(2);
    engine::CpuExecutor executor(engine::build_graph(config.model, config.training.batch_size),
                                 {config.training.seed, config.training.optimizer.kind, ladon::TaskWeighting::fixed});
    const std::vector<float> losses = loss_sequence(executor, *data, config, 200);
    ASSERT_EQ(losses.size(), 200u * 4u);
    const std::string core = openblas_get_corename();
    const uint64_t hash = bits_hash(losses);
    std::printf("OpenBLAS core %s: loss hash 0x%016llx\n", core.c_str(), static_cast<unsigned long long>(hash));
    for (int h = 0; h < 4; ++h)
        EXPECT_NEAR(losses[h], recorded_first_losses[h], 1e-5 * recorded_first_losses[h]) << "head " << h;
    for (const RecordedHash& recorded : recorded_hashes)
        if (core == recorded.core) {
            EXPECT_EQ(hash, recorded.hash) << "the losses' bits changed on OpenBLAS core " << core;
            return;
        }
    std::printf("no hash recorded for OpenBLAS core %s: compared to 1e-4 only\n", core.c_str());
}

}  // namespace
}  // namespace ladon::testing
