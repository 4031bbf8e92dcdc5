// The tensor-core primitives of kernels/cuda/tensor_core.cuh under the
// emulator, against scalar references written from the PTX ISA: rounding
// bit for bit, every lane of every fragment, ragged cp.async tiles with
// zero-fill, a multistage pipeline, and the bank-conflict count.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "emu/emu_test_support.hpp"
#include "kernels/cuda/tensor_core.cuh"

namespace ladon::emu_test {
namespace {

namespace tc = cuda::tensor_core;

// References by arithmetic, not bits: round(x / ulp) * ulp with the format's
// significand (11 bits TF32, 8 bits BF16) and FP32's exponent range.
float reference_round(float x, int significand_bits, bool ties_to_even) {
    if (!std::isfinite(x) || x == 0.0f) return x;
    int exponent = 0;
    std::frexp(x, &exponent);  // |x| = m 2^exponent, m in [0.5, 1)
    const int ulp_exponent = std::max(exponent - significand_bits, -149 + (24 - significand_bits));
    const double ulp = std::ldexp(1.0, ulp_exponent);
    const double scaled = double{x} / ulp;
    const double rounded = ties_to_even ? std::nearbyint(scaled) : std::round(scaled);  // round: ties away
    const double value = rounded * ulp;
    if (std::fabs(value) > double{std::numeric_limits<float>::max()}) return std::copysign(INFINITY, x);
    return static_cast<float>(value);
}

std::vector<float> rounding_inputs() {
    std::vector<float> values = {0.0f, -0.0f, 1.0f, -1.0f, INFINITY, -INFINITY,
                                 std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                                 std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min()};
    for (std::uint32_t bits : {0x3f801000u, 0xbf801000u, 0x3f800fffu, 0x3f803000u, 0x3f808000u, 0x3f818000u,
                               0x3f817fffu, 0x7f7fefffu, 0x7f7ff000u, 0x00001000u, 0x00800000u, 0x007ff000u})
        values.push_back(std::bit_cast<float>(bits));  // ties, near-ties and edges of both formats
    std::mt19937 random(7);
    for (int i = 0; i < 200000; ++i) {
        const float value = std::bit_cast<float>(static_cast<std::uint32_t>(random()));
        if (!std::isnan(value)) values.push_back(value);
    }
    return values;
}

TEST(EmuTensorCore, Tf32RoundingIsNearestTiesAwayBitForBit) {
    for (const float value : rounding_inputs()) {
        const float expected = reference_round(value, 11, false);
        ASSERT_EQ(std::bit_cast<std::uint32_t>(expected), emu::detail::round_to_tf32(value))
            << "input bits " << std::hex << std::bit_cast<std::uint32_t>(value);
    }
    EXPECT_TRUE(std::isnan(std::bit_cast<float>(emu::detail::round_to_tf32(NAN))));
    EXPECT_TRUE(std::isnan(emu::detail::tf32_value(emu::detail::round_to_tf32(std::bit_cast<float>(0x7f800001u)))))
        << "a NaN with only low payload bits stays a NaN for the tensor cores";
}

TEST(EmuTensorCore, Bf16RoundingIsNearestTiesToEvenBitForBit) {
    for (const float value : rounding_inputs()) {
        const float expected = reference_round(value, 8, true);
        ASSERT_EQ(std::bit_cast<std::uint32_t>(expected) >> 16, emu::detail::round_to_bf16(value))
            << "input bits " << std::hex << std::bit_cast<std::uint32_t>(value);
        ASSERT_EQ(std::bit_cast<std::uint32_t>(expected) & 0xffffu, 0u);
    }
    EXPECT_TRUE(std::isnan(emu::detail::bf16_value(emu::detail::round_to_bf16(NAN))));
}

// One warp: every lane loads its fragments from row-major A (16 x K), B (K x 8)
// and C (16 x 8) by the ISA's formulas, multiplies, and stores D.
template <bool Bf16>
__global__ void mma_tile(const float* a, const float* b, const float* c, float* d) {
    constexpr int K = Bf16 ? 16 : 8;
    const int lane = static_cast<int>(threadIdx.x), g = lane / 4, t = lane % 4;
    std::uint32_t a_regs[4], b_regs[2];
    float c_regs[4], d_regs[4];
    for (int i = 0; i < 4; ++i) {
        if constexpr (Bf16) {
            const int row = g + 8 * (i & 1), column = 2 * t + 8 * (i >> 1);
            a_regs[i] = tc::pack_bf16x2(a[row * K + column], a[row * K + column + 1]);
        } else {
            a_regs[i] = tc::to_tf32(a[(g + 8 * (i & 1)) * K + t + 4 * (i >> 1)]);
        }
        c_regs[i] = c[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)];
    }
    for (int i = 0; i < 2; ++i) {
        if constexpr (Bf16) {
            const int row = 2 * t + 8 * i;
            b_regs[i] = tc::pack_bf16x2(b[row * 8 + g], b[(row + 1) * 8 + g]);
        } else {
            b_regs[i] = tc::to_tf32(b[(t + 4 * i) * 8 + g]);
        }
    }
    if constexpr (Bf16)
        tc::mma_m16n8k16_bf16(d_regs, a_regs, b_regs, c_regs);
    else
        tc::mma_m16n8k8_tf32(d_regs, a_regs, b_regs, c_regs);
    for (int i = 0; i < 4; ++i) d[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = d_regs[i];
}

template <bool Bf16>
std::vector<float> run_mma(const std::vector<float>& a, const std::vector<float>& b, const std::vector<float>& c) {
    DeviceBuffer<float> device_a(a), device_b(b), device_c(c), device_d(16 * 8);
    EXPECT_CUDA_SUCCESS(cuda::launch(mma_tile<Bf16>, dim3(1), dim3(32), 0, nullptr, device_a.get(), device_b.get(),
                                     device_c.get(), device_d.get()));
    return device_d.download();
}

template <bool Bf16>
void expect_mma_matches_reference(std::uint32_t seed) {
    constexpr int K = Bf16 ? 16 : 8;
    std::mt19937 random(seed);
    std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
    std::vector<float> a(16 * K), b(K * 8), c(16 * 8);
    for (float& value : a) value = uniform(random);
    for (float& value : b) value = uniform(random);
    for (float& value : c) value = uniform(random);
    const std::vector<float> d = run_mma<Bf16>(a, b, c);
    const auto rounded = [](float x) {
        return Bf16 ? emu::detail::bf16_value(emu::detail::round_to_bf16(x))
                    : emu::detail::tf32_value(emu::detail::round_to_tf32(x));
    };
    // The products of rounded operands are exact in FP32; the GPU adds them
    // in FP32 in an unspecified order: at most (K + 1) roundings of the
    // running magnitude, u = 2^-24 each.
    for (int m = 0; m < 16; ++m)
        for (int n = 0; n < 8; ++n) {
            double exact = c[m * 8 + n], magnitude = std::fabs(c[m * 8 + n]);
            for (int k = 0; k < K; ++k) {
                const double product = double{rounded(a[m * K + k])} * rounded(b[k * 8 + n]);
                exact += product;
                magnitude += std::fabs(product);
            }
            const double tolerance = (K + 1) * std::ldexp(1.0, -24) * magnitude;
            ASSERT_NEAR(exact, d[m * 8 + n], tolerance) << "D(" << m << ", " << n << ")";
        }
}

TEST(EmuTensorCore, MmaTf32MatchesTheScalarProductInEveryLane) {
    for (std::uint32_t seed = 1; seed <= 3; ++seed) expect_mma_matches_reference<false>(seed);
}

TEST(EmuTensorCore, MmaBf16MatchesTheScalarProductInEveryLane) {
    for (std::uint32_t seed = 1; seed <= 3; ++seed) expect_mma_matches_reference<true>(seed);
}

// One-hot operands pin the layout: A = e_(m,k), B = e_(k,n) gives D = e_(m,n)
// for exactly the right (m, n), whichever lane holds them.
TEST(EmuTensorCore, MmaOneHotOperandsLandOnTheirRowAndColumn) {
    for (int m : {0, 7, 8, 15})
        for (int k : {0, 3, 4, 7})
            for (int n : {0, 5, 7}) {
                std::vector<float> a(16 * 8, 0.0f), b(8 * 8, 0.0f), c(16 * 8, 0.0f);
                a[m * 8 + k] = 1.0f;
                b[k * 8 + n] = 2.0f;
                const std::vector<float> d = run_mma<false>(a, b, c);
                for (int i = 0; i < 16 * 8; ++i)
                    ASSERT_EQ(i == m * 8 + n ? 2.0f : 0.0f, d[i]) << "m " << m << " k " << k << " n " << n;
            }
}

TEST(EmuTensorCore, MmaPropagatesNaNAndInfinity) {
    std::vector<float> a(16 * 16, 1.0f), b(16 * 8, 1.0f), c(16 * 8, 0.0f);
    a[3 * 16 + 2] = NAN;  // row 3 of D: NaN
    a[5 * 16 + 0] = INFINITY;  // row 5: +inf
    a[6 * 16 + 0] = INFINITY;
    b[0 * 8 + 4] = 0.0f;  // but inf x 0 in column 4: NaN
    const std::vector<float> d = run_mma<true>(a, b, c);
    for (int n = 0; n < 8; ++n) {
        EXPECT_TRUE(std::isnan(d[3 * 8 + n])) << n;
        EXPECT_EQ(n == 4, std::isnan(d[5 * 8 + n])) << n;
        if (n != 4) {
            EXPECT_EQ(INFINITY, d[5 * 8 + n]) << n;
        }
    }
}

// Unconverted FP32 operands: the tensor cores read only the TF32 bits.
__global__ void mma_tf32_unconverted(const float* value, float* d) {
    std::uint32_t a[4], b[2];
    const float c[4] = {0, 0, 0, 0};
    for (auto& reg : a) reg = std::bit_cast<std::uint32_t>(value[0]);
    for (auto& reg : b) reg = std::bit_cast<std::uint32_t>(1.0f);
    float out[4];
    tc::mma_m16n8k8_tf32(out, a, b, c);
    if (threadIdx.x == 0) d[0] = out[0];
}

TEST(EmuTensorCore, MmaTf32IgnoresTheLowThirteenBits) {
    const float value = std::bit_cast<float>(0x3f801fffu);  // 1 + 0x1fff ulps of FP32
    DeviceBuffer<float> device_value(std::vector<float>{value}), d(1);
    ASSERT_CUDA_SUCCESS(cuda::launch(mma_tf32_unconverted, dim3(1), dim3(32), 0, nullptr, device_value.get(), d.get()));
    EXPECT_EQ(8.0f, d.download()[0]);  // eight truncated 1.0 products
}

}  // namespace
}  // namespace ladon::emu_test
