// The tensor-core GEMM (kernels/cuda/gemm_tensor_core.cuh) against a double
// loop on odd shapes, every transpose pair, TF32 and BF16, whole or split
// along K; its cp.async copies conflict-free, its results bitwise repeatable.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.hpp"
#include "kernels/cuda/gemm_tensor_core.hpp"
#if defined(LADON_EMU)
#include "kernels/cuda/gemm_tensor_core.cuh"
#include "kernels/emu/launch_bounds.hpp"
#endif

namespace ladon {
namespace {

using cuda::MatmulPrecision;
using cuda::MmaTiles;
using cuda_test::DeviceBuffer;

class CudaGemmTensorCore : public cuda_test::DeviceTest {};

struct Problem {
    bool transpose_a, transpose_b;
    int64_t m, n, k;
};

std::string describe(const Problem& p, MatmulPrecision precision) {
    return std::string(precision == MatmulPrecision::tf32 ? "tf32" : "bf16") + " m " + std::to_string(p.m) + " n " +
           std::to_string(p.n) + " k " + std::to_string(p.k) + (p.transpose_a ? " A^T" : "") +
           (p.transpose_b ? " B^T" : "");
}

int64_t round_up4(int64_t value) { return (value + 3) / 4 * 4; }

// Runs C = 0.5 op(A) op(B) - 2 C + bias (leading dimensions padded to
// multiples of 4, as the kernel needs) and checks every element of C against
// a double loop: the operands' rounding (unit roundoff u = 2^-11 for TF32,
// 2^-8 for BF16, twice per product) and FP32 accumulation in an unspecified
// order ((k + 2) 2^-24), each times the sum of |terms|.
// `splits` > 1 asks for a split along K, with `scratch_bytes` of scratch
// (-1: as much as cuda::split_k_bytes says it needs).
void expect_gemm_matches(const Problem& p, MatmulPrecision precision, std::vector<float>* result = nullptr,
                         MmaTiles tiles = MmaTiles::automatic, int splits = 1, int64_t scratch_bytes = -1) {
    const int64_t lda = round_up4(p.transpose_a ? p.m : p.k) + 4, ldb = round_up4(p.transpose_b ? p.k : p.n),
                  ldc = p.n + 1;
    const std::vector<float> a = cuda_test::uniform_values((p.transpose_a ? p.k : p.m) * lda, 31),
                             b = cuda_test::uniform_values((p.transpose_b ? p.n : p.k) * ldb, 32),
                             c = cuda_test::uniform_values(p.m * ldc, 33), bias = cuda_test::uniform_values(p.n, 34);
    const float alpha = 0.5f, beta = -2.0f;
    DeviceBuffer<float> device_a(a), device_b(b), device_c(c), device_bias(bias);
    cuda::GemmArguments g;
    g.transpose_a = p.transpose_a, g.transpose_b = p.transpose_b;
    g.m = p.m, g.n = p.n, g.k = p.k, g.alpha = alpha, g.beta = beta;
    g.a = device_a.get(), g.lda = lda, g.b = device_b.get(), g.ldb = ldb, g.c = device_c.get(), g.ldc = ldc;
    g.bias = device_bias.get();
    ASSERT_TRUE(cuda::gemm_tensor_core_applies(g));
    if (scratch_bytes < 0) scratch_bytes = int64_t(cuda::split_k_bytes(p.m, p.n, p.k, splits));
    DeviceBuffer<float> scratch(std::size_t(std::max<int64_t>(scratch_bytes, 4) / 4));
    ASSERT_CUDA_SUCCESS(
        cuda::gemm_tensor_core(g, precision, nullptr, tiles, {scratch.get(), std::size_t(scratch_bytes)}, splits));
    const std::vector<float> actual = device_c.download();
    const double u = precision == MatmulPrecision::tf32 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
    const double bound = 2 * u + u * u + (p.k + 2) * std::ldexp(1.0, -24);
    int misses = 0;
    for (int64_t i = 0; i < p.m && misses < 5; ++i)
        for (int64_t j = 0; j < ldc && misses < 5; ++j) {
            const float before = c[i * ldc + j];
            if (j >= p.n) {  // padding: untouched
                if (actual[i * ldc + j] != before)
                    ++misses, ADD_FAILURE() << describe(p, precision) << " wrote padding";
                continue;
            }
            double sum = 0, magnitude = 0;
            for (int64_t q = 0; q < p.k; ++q) {
                const double term = double{p.transpose_a ? a[q * lda + i] : a[i * lda + q]} *
                                    double{p.transpose_b ? b[j * ldb + q] : b[q * ldb + j]};
                sum += term;
                magnitude += std::fabs(term);
            }
            const double expected = alpha * sum + beta * double{before} + bias[j];
            const double tolerance = alpha * bound * magnitude + 4e-7 * (std::fabs(beta * before) + std::fabs(bias[j]));
            if (std::fabs(expected - actual[i * ldc + j]) > tolerance) {
                ++misses;
                ADD_FAILURE() << describe(p, precision) << ": C(" << i << ", " << j << ") expected " << expected
                              << ", got " << actual[i * ldc + j] << " (tolerance " << tolerance << ")";
            }
        }
    if (result != nullptr) *result = actual;
}

TEST_F(CudaGemmTensorCore, OddShapesMatchTheDoubleLoopInTf32AndBf16) {
    const Problem problems[] = {{false, false, 1, 1, 1},  {false, true, 13, 37, 67},  {true, false, 67, 13, 37},
                                {true, true, 37, 67, 13}, {false, true, 130, 70, 45}, {false, false, 64, 64, 96},
                                {true, true, 3, 130, 33}};
    for (const MatmulPrecision precision : {MatmulPrecision::tf32, MatmulPrecision::bf16})
        for (const Problem& p : problems) expect_gemm_matches(p, precision);
}

// The 128 x 128 tiles, 8 warps of 64 x 32, on the same shapes and two that
// fill several of them.
TEST_F(CudaGemmTensorCore, LargeTilesMatchTheDoubleLoop) {
    const Problem problems[] = {{false, false, 1, 1, 1},   {false, true, 13, 37, 67},  {true, false, 67, 13, 37},
                                {true, true, 37, 67, 13},  {false, true, 130, 70, 45}, {false, false, 129, 257, 40},
                                {true, true, 200, 131, 33}};
    for (const MatmulPrecision precision : {MatmulPrecision::tf32, MatmulPrecision::bf16})
        for (const Problem& p : problems) expect_gemm_matches(p, precision, nullptr, MmaTiles::large);
}

TEST_F(CudaGemmTensorCore, IsBitwiseRepeatable) {
    for (const MatmulPrecision precision : {MatmulPrecision::tf32, MatmulPrecision::bf16}) {
        std::vector<std::vector<float>> results;
        cuda_test::for_each_schedule([&](const std::string&) {
            results.emplace_back();
            expect_gemm_matches({false, true, 70, 45, 100}, precision, &results.back());
            results.emplace_back();
            expect_gemm_matches({true, false, 150, 45, 100}, precision, &results.back(), MmaTiles::large);
        });
        ASSERT_EQ(4u, results.size());
        EXPECT_EQ(results[0], results[2]);
        EXPECT_EQ(results[1], results[3]);
    }
}

// K in slices summed by a second kernel: alpha, beta C and the bias applied
// once, every slice counted, ragged last slices (1000 = 5 slices of 7
// k-tiles, the last of 4 and a part).
TEST_F(CudaGemmTensorCore, SplitKMatchesTheDoubleLoop) {
    struct Split {
        Problem problem;
        int splits;
    };
    const Split splits[] = {{{false, true, 37, 45, 1000}, 5},
                            {{true, false, 13, 70, 300}, 3},
                            {{true, true, 70, 13, 517}, 17},
                            {{false, false, 1, 1, 129}, 4},
                            {{false, true, 130, 67, 200}, 64}};
    for (const MatmulPrecision precision : {MatmulPrecision::tf32, MatmulPrecision::bf16})
        for (const Split& split : splits)
            expect_gemm_matches(split.problem, precision, nullptr, MmaTiles::small, split.splits);
}

// The scratch one float short of the split: it runs whole, still right, and
// gives the unsplit product's bits.
TEST_F(CudaGemmTensorCore, SplitKWithoutEnoughScratchRunsWhole) {
    const Problem p{false, true, 37, 45, 1000};
    const int64_t needed = int64_t(cuda::split_k_bytes(p.m, p.n, p.k, 5));
    ASSERT_EQ(5 * 37 * 45 * 4, needed);
    std::vector<float> short_scratch, whole, split;
    expect_gemm_matches(p, MatmulPrecision::tf32, &short_scratch, MmaTiles::small, 5, needed - 4);
    expect_gemm_matches(p, MatmulPrecision::tf32, &whole, MmaTiles::small, 1);
    expect_gemm_matches(p, MatmulPrecision::tf32, &split, MmaTiles::small, 5);
    EXPECT_EQ(whole, short_scratch);
    EXPECT_NE(whole, split) << "a split sums in another order: some bits should differ";
}

TEST_F(CudaGemmTensorCore, SplitKIsBitwiseRepeatable) {
    std::vector<std::vector<float>> results;
    cuda_test::for_each_schedule([&](const std::string&) {
        results.emplace_back();
        expect_gemm_matches({true, false, 45, 70, 700}, MatmulPrecision::bf16, &results.back(), MmaTiles::small, 6);
    });
    ASSERT_EQ(2u, results.size());
    EXPECT_EQ(results[0], results[1]);
}

// Splits where the tiles leave SMs idle: fashion_mtl's dense layer (8
// blocks, K = 3200 in 100 k-tiles: 17 slices of 6), its heads (K = 256: 2
// slices of the 4-tile minimum); none for large products or short K.
TEST_F(CudaGemmTensorCore, ChoosesSplitKFromTheShape) {
    EXPECT_EQ(17, cuda::choose_split_k(128, 256, 3200, MmaTiles::automatic));
    EXPECT_EQ(2, cuda::choose_split_k(128, 25, 256, MmaTiles::automatic));
    EXPECT_EQ(1, cuda::choose_split_k(128, 256, 127, MmaTiles::automatic));
    EXPECT_EQ(1, cuda::choose_split_k(1024, 1024, 4096, MmaTiles::automatic));
    EXPECT_EQ(1, cuda::choose_split_k(128, 256, 3200, MmaTiles::large));
    EXPECT_EQ(32, cuda::choose_split_k(1, 1, 1 << 20, MmaTiles::automatic));
    EXPECT_EQ(std::size_t{17} * 128 * 256 * 4, cuda::split_k_bytes(128, 256, 3200, 17));
    EXPECT_EQ(0u, cuda::split_k_bytes(128, 256, 3200, 1));
    // The dense layer's workspace covers its largest split: backward filter's [256, 3200] over the batch.
    const ops::DenseShape dense{128, 3200, 256};
    EXPECT_EQ(
        std::max({cuda::split_k_bytes(128, 256, 3200, 17),
                  cuda::split_k_bytes(128, 3200, 256, cuda::choose_split_k(128, 3200, 256, MmaTiles::automatic)),
                  cuda::split_k_bytes(256, 3200, 128, cuda::choose_split_k(256, 3200, 128, MmaTiles::automatic))}),
        cuda::dense_workspace_bytes(dense, MatmulPrecision::tf32));
    EXPECT_EQ(0u, cuda::dense_workspace_bytes(dense, MatmulPrecision::fp32));
}

// Unaligned leading dimensions take the FP32 kernel: exact FP32 results.
TEST_F(CudaGemmTensorCore, FallsBackToFp32WhereTheAlignmentDoesNotHold) {
    const std::vector<float> a = cuda_test::uniform_values(5 * 7, 41), b = cuda_test::uniform_values(7 * 3, 42);
    DeviceBuffer<float> device_a(a), device_b(b), device_c(5 * 3);
    cuda::GemmArguments g;
    g.m = 5, g.n = 3, g.k = 7, g.a = device_a.get(), g.lda = 7, g.b = device_b.get(), g.ldb = 3;
    g.c = device_c.get(), g.ldc = 3;
    EXPECT_FALSE(cuda::gemm_tensor_core_applies(g));
    ASSERT_CUDA_SUCCESS(cuda::gemm_tensor_core(g, MatmulPrecision::bf16, nullptr));
    DeviceBuffer<float> fp32_c(5 * 3);
    g.c = fp32_c.get();
    ASSERT_CUDA_SUCCESS(cuda::gemm(g, nullptr));
    EXPECT_EQ(fp32_c.download(), device_c.download());
}

#if defined(LADON_EMU) && defined(LADON_EMU_LAUNCH_BOUNDS)
// The emulator holds the library's kernels to the __launch_bounds__ nvcc
// read (cmake/launch_bounds.cmake): 4 warps for 64 x 64 tiles, 8 for 128 x
// 128, and a block above that is refused.
TEST_F(CudaGemmTensorCore, KernelsKeepTheirLaunchBounds) {
    using namespace cuda::mma_pipeline;
    const auto* small = reinterpret_cast<const void*>(&cuda::tc_gemm::gemm_kernel<SmallTiles, false, true, false>);
    const auto* large = reinterpret_cast<const void*>(&cuda::tc_gemm::gemm_kernel<LargeTiles, true, false, true>);
    EXPECT_EQ(128u, emu::detail::launch_bound(small));
    EXPECT_EQ(256u, emu::detail::launch_bound(large));
    EXPECT_EQ(cudaErrorLaunchOutOfResources,
              cuda::launch(cuda::tc_gemm::gemm_kernel<SmallTiles, false, true, false>, dim3(1), dim3(256), 0, nullptr,
                           cuda::GemmArguments{}, cuda::tc_gemm::KSlices{}));
    EXPECT_EQ(cudaErrorLaunchOutOfResources, cudaGetLastError());
}
#endif

#if defined(LADON_EMU)
// Blocks per SM by shared memory, as the kernels' launch bounds ask for them:
// 64 x 64 tiles 4 (BF16 with both operands k-major: 3, rows padded to 40
// floats); 128 x 128 tiles 2, except BF16 with both operands k-major (1),
// which the GEMM runs on 64 x 64 tiles instead.
TEST_F(CudaGemmTensorCore, SharedMemoryKeepsTwoBlocksPerSm) {
    using namespace cuda::mma_pipeline;
    using cuda::tc_gemm::ALayout, cuda::tc_gemm::BLayout;
    EXPECT_EQ(4, (resident_blocks<SmallTiles, ALayout<SmallTiles, false, false>, BLayout<SmallTiles, true, false>>));
    EXPECT_EQ(3, (resident_blocks<SmallTiles, ALayout<SmallTiles, false, true>, BLayout<SmallTiles, true, true>>));
    EXPECT_EQ(2, (resident_blocks<LargeTiles, ALayout<LargeTiles, false, false>, BLayout<LargeTiles, true, false>>));
    EXPECT_EQ(2, (resident_blocks<LargeTiles, ALayout<LargeTiles, true, true>, BLayout<LargeTiles, false, true>>));
    EXPECT_EQ(1, (resident_blocks<LargeTiles, ALayout<LargeTiles, false, true>, BLayout<LargeTiles, true, true>>));
    expect_gemm_matches({false, true, 150, 140, 100}, MatmulPrecision::bf16, nullptr, MmaTiles::large);
}

// Every cp.async of the pipeline lands in 8 (or 16) distinct banks per phase.
TEST_F(CudaGemmTensorCore, CopiesIntoSharedMemoryHaveNoBankConflicts) {
    for (const MatmulPrecision precision : {MatmulPrecision::tf32, MatmulPrecision::bf16})
        for (const bool transpose : {false, true}) {
            emu::reset_shared_bank_conflicts();
            expect_gemm_matches({transpose, !transpose, 70, 45, 100}, precision);
            expect_gemm_matches({transpose, !transpose, 150, 140, 100}, precision, nullptr, MmaTiles::large);
            const emu::BankCounts counts = emu::shared_bank_conflicts().cp_async;
            EXPECT_GT(counts.phases, 0u);
            EXPECT_EQ(0u, counts.conflicts()) << (transpose ? "A^T" : "B^T");
        }
}
#endif

}  // namespace
}  // namespace ladon
