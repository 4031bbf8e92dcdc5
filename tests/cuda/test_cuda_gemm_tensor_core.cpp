// The tensor-core GEMM (kernels/cuda/gemm_tensor_core.cuh) against a double
// loop on odd shapes, every transpose pair, TF32 and BF16; its cp.async
// copies conflict-free, its results bitwise repeatable.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.hpp"
#include "kernels/cuda/gemm_tensor_core.hpp"

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
void expect_gemm_matches(const Problem& p, MatmulPrecision precision, std::vector<float>* result = nullptr,
                         MmaTiles tiles = MmaTiles::automatic) {
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
    ASSERT_CUDA_SUCCESS(cuda::gemm_tensor_core(g, precision, nullptr, tiles));
    const std::vector<float> actual = device_c.download();
    const double u = precision == MatmulPrecision::tf32 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
    const double bound = 2 * u + u * u + (p.k + 2) * std::ldexp(1.0, -24);
    int misses = 0;
    for (int64_t i = 0; i < p.m && misses < 5; ++i)
        for (int64_t j = 0; j < ldc && misses < 5; ++j) {
            const float before = c[i * ldc + j];
            if (j >= p.n) {  // padding: untouched
                if (actual[i * ldc + j] != before) ++misses, ADD_FAILURE() << describe(p, precision) << " wrote padding";
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
    const Problem problems[] = {{false, false, 1, 1, 1},    {false, true, 13, 37, 67}, {true, false, 67, 13, 37},
                                {true, true, 37, 67, 13},   {false, true, 130, 70, 45}, {false, false, 64, 64, 96},
                                {true, true, 3, 130, 33}};
    for (const MatmulPrecision precision : {MatmulPrecision::tf32, MatmulPrecision::bf16})
        for (const Problem& p : problems) expect_gemm_matches(p, precision);
}

// The 128 x 128 tiles, 8 warps of 64 x 32, on the same shapes and two that
// fill several of them.
TEST_F(CudaGemmTensorCore, LargeTilesMatchTheDoubleLoop) {
    const Problem problems[] = {{false, false, 1, 1, 1},    {false, true, 13, 37, 67},   {true, false, 67, 13, 37},
                                {true, true, 37, 67, 13},   {false, true, 130, 70, 45},  {false, false, 129, 257, 40},
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

#if defined(LADON_EMU)
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
