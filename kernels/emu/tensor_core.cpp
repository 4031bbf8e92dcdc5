// mma.sync and ldmatrix as aligned warp rendezvous (sync.hpp), their fragment
// layouts taken lane by lane from the PTX ISA ("Matrix Fragments for
// mma.m16n8k8 / m16n8k16", "ldmatrix"); and the shared-memory bank count.
#include "kernels/emu/tensor_core.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kernels/emu/bank_count.hpp"
#include "kernels/emu/shared_memory.hpp"
#include "kernels/emu/sync.hpp"
#include "kernels/emu/tsan.hpp"

namespace ladon::emu::detail {
namespace {

constexpr int lanes = 32;
constexpr std::uint32_t poison_word = 0xffffffffu;

struct MmaInput {
    std::uint32_t a[4];
    std::uint32_t b[2];
    float c[4];
};
struct MmaOutput {
    float d[4];
};

// The lane's row and column of each fragment element: groupID = lane / 4,
// threadID_in_group = lane % 4 in the ISA's words.
struct Coordinate {
    int row, column;
};
Coordinate accumulator_at(int lane, int i) { return {lane / 4 + (i >= 2 ? 8 : 0), lane % 4 * 2 + (i & 1)}; }
// m16n8k8 .tf32: a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4); b0 (t, g), b1 (t+4, g).
Coordinate tf32_a_at(int lane, int i) { return {lane / 4 + (i & 1) * 8, lane % 4 + (i >= 2 ? 4 : 0)}; }
Coordinate tf32_b_at(int lane, int i) { return {lane % 4 + i * 4, lane / 4}; }
// m16n8k16 .bf16, element e (register e / 2, low half first): rows g, g, g+8,
// g+8, g, g, g+8, g+8 and columns 2t + (e & 1), + 8 from e = 4; B element e
// at row 2t + (e & 1), + 8 from e = 2, column g.
Coordinate bf16_a_at(int lane, int e) {
    return {lane / 4 + (e / 2 % 2) * 8, lane % 4 * 2 + (e & 1) + (e >= 4 ? 8 : 0)};
}
Coordinate bf16_b_at(int lane, int e) { return {lane % 4 * 2 + (e & 1) + (e >= 2 ? 8 : 0), lane / 4}; }

std::string poisoned(const char* operand, int index) {
    return std::string(operand) + " register " + std::to_string(index) +
           " holds the poison pattern 0xffffffff: it was read from memory nothing wrote, or from a cp.async "
           "destination before its cp.async.wait_group";
}

// A poisoned operand, or empty: every register of every lane is looked at.
template <bool Bf16>
std::string check_operands(const MmaInput* const* inputs, int& faulty_lane) {
    for (int lane = 0; lane < lanes; ++lane) {
        const MmaInput& in = *inputs[lane];
        faulty_lane = lane;
        for (int i = 0; i < 4; ++i) {
            const bool half_poisoned = Bf16 && ((in.a[i] & 0xffffu) == 0xffffu || in.a[i] >> 16 == 0xffffu);
            if (in.a[i] == poison_word || half_poisoned) return poisoned("A", i);
            if (std::bit_cast<std::uint32_t>(in.c[i]) == poison_word) return poisoned("C", i);
        }
        for (int i = 0; i < 2; ++i) {
            const bool half_poisoned = Bf16 && ((in.b[i] & 0xffffu) == 0xffffu || in.b[i] >> 16 == 0xffffu);
            if (in.b[i] == poison_word || half_poisoned) return poisoned("B", i);
        }
    }
    return {};
}

// D = A B + C for the m16n8kK shape: products exact in double (TF32 and BF16
// significands are short), summed in k order, rounded once to FP32. The GPU
// accumulates in FP32 in an order PTX leaves open: tests allow for that.
template <int K>
void multiply_accumulate(const float (&a)[16][K], const float (&b)[K][8], const MmaInput* const* inputs,
                         MmaOutput* const* outputs) {
    for (int lane = 0; lane < lanes; ++lane)
        for (int i = 0; i < 4; ++i) {
            const auto [row, column] = accumulator_at(lane, i);
            double sum = inputs[lane]->c[i];
            for (int k = 0; k < K; ++k) sum += double{a[row][k]} * double{b[k][column]};
            outputs[lane]->d[i] = static_cast<float>(sum);
        }
}

std::string run_mma_tf32(const void* const* raw_inputs, void* const* raw_outputs, int& faulty_lane) {
    const auto* const* inputs = reinterpret_cast<const MmaInput* const*>(raw_inputs);
    if (std::string error = check_operands<false>(inputs, faulty_lane); !error.empty()) return error;
    float a[16][8], b[8][8];
    for (int lane = 0; lane < lanes; ++lane) {
        for (int i = 0; i < 4; ++i) {
            const auto [row, column] = tf32_a_at(lane, i);
            a[row][column] = tf32_value(inputs[lane]->a[i]);
        }
        for (int i = 0; i < 2; ++i) {
            const auto [row, column] = tf32_b_at(lane, i);
            b[row][column] = tf32_value(inputs[lane]->b[i]);
        }
    }
    multiply_accumulate<8>(a, b, inputs, reinterpret_cast<MmaOutput* const*>(raw_outputs));
    return {};
}

std::string run_mma_bf16(const void* const* raw_inputs, void* const* raw_outputs, int& faulty_lane) {
    const auto* const* inputs = reinterpret_cast<const MmaInput* const*>(raw_inputs);
    if (std::string error = check_operands<true>(inputs, faulty_lane); !error.empty()) return error;
    const auto half = [](std::uint32_t reg, int e) { return static_cast<std::uint16_t>(e % 2 == 0 ? reg : reg >> 16); };
    float a[16][16], b[16][8];
    for (int lane = 0; lane < lanes; ++lane) {
        for (int e = 0; e < 8; ++e) {
            const auto [row, column] = bf16_a_at(lane, e);
            a[row][column] = bf16_value(half(inputs[lane]->a[e / 2], e));
        }
        for (int e = 0; e < 4; ++e) {
            const auto [row, column] = bf16_b_at(lane, e);
            b[row][column] = bf16_value(half(inputs[lane]->b[e / 2], e));
        }
    }
    multiply_accumulate<16>(a, b, inputs, reinterpret_cast<MmaOutput* const*>(raw_outputs));
    return {};
}

constexpr AlignedInstruction mma_tf32{"mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32", &run_mma_tf32};
constexpr AlignedInstruction mma_bf16{"mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", &run_mma_bf16};

template <typename Input>
void mma(const AlignedInstruction& instruction, float (&d)[4], const std::uint32_t (&a)[4],
         const std::uint32_t (&b)[2], const float (&c)[4]) {
    Input in;
    std::memcpy(in.a, a, sizeof in.a);
    std::memcpy(in.b, b, sizeof in.b);
    std::memcpy(in.c, c, sizeof in.c);
    MmaOutput out;
    warp_aligned(instruction, &in, &out);
    std::memcpy(d, out.d, sizeof out.d);
}

// ldmatrix: each lane that names a row reads it itself (so the race build
// sees the read as this thread's), then the rendezvous hands out fragments.
struct MatrixRow {
    std::uintptr_t address = 0;
    std::uint16_t elements[8] = {};
};
struct MatrixFragment {
    std::uint32_t registers[4];
};

template <int Matrices, bool Transposed>
std::string run_ldmatrix(const void* const* raw_inputs, void* const* raw_outputs, int& /*faulty_lane*/) {
    const auto* const* rows = reinterpret_cast<const MatrixRow* const*>(raw_inputs);
    for (int matrix = 0; matrix < Matrices; ++matrix) {
        BankAccess phase[8];
        for (int r = 0; r < 8; ++r) phase[r] = {rows[matrix * 8 + r]->address, 16};
        count_bank_phase(BankCounter::ldmatrix, phase);
    }
    for (int lane = 0; lane < lanes; ++lane) {
        auto& out = *static_cast<MatrixFragment*>(raw_outputs[lane]);
        for (int matrix = 0; matrix < Matrices; ++matrix) {
            const MatrixRow* const* m = rows + matrix * 8;
            // Plain: row lane / 4, elements 2 (lane % 4) and the next. Transposed:
            // element lane / 4 of rows 2 (lane % 4) and the next.
            const std::uint16_t low = Transposed ? m[lane % 4 * 2]->elements[lane / 4]
                                                 : m[lane / 4]->elements[lane % 4 * 2];
            const std::uint16_t high = Transposed ? m[lane % 4 * 2 + 1]->elements[lane / 4]
                                                  : m[lane / 4]->elements[lane % 4 * 2 + 1];
            out.registers[matrix] = std::uint32_t{low} | std::uint32_t{high} << 16;
        }
    }
    return {};
}

#define LADON_EMU_LDMATRIX(count, transposed, suffix)                                                   \
    AlignedInstruction {                                                                                \
        "ldmatrix.sync.aligned.m8n8.x" #count suffix ".shared.b16", &run_ldmatrix<count, transposed> \
    }
constexpr AlignedInstruction ldmatrix_instructions[2][3] = {
    {LADON_EMU_LDMATRIX(1, false, ""), LADON_EMU_LDMATRIX(2, false, ""), LADON_EMU_LDMATRIX(4, false, "")},
    {LADON_EMU_LDMATRIX(1, true, ".trans"), LADON_EMU_LDMATRIX(2, true, ".trans"), LADON_EMU_LDMATRIX(4, true, ".trans")},
};
#undef LADON_EMU_LDMATRIX

std::string check_row_address(const void* address) {
    char text[32];
    std::snprintf(text, sizeof text, "%p", address);
    if (reinterpret_cast<std::uintptr_t>(address) % 16 != 0)
        return std::string("ldmatrix: row address ") + text + " is not 16-byte aligned";
    if (!is_shared_memory(address, 16))
        return std::string("ldmatrix: row address ") + text +
               " is not in the block's shared memory (16 bytes from it must lie in one shared array)";
    return {};
}

}  // namespace

void mma_m16n8k8_tf32(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2], const float (&c)[4]) {
    mma<MmaInput>(mma_tf32, d, a, b, c);
}

void mma_m16n8k16_bf16(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2], const float (&c)[4]) {
    mma<MmaInput>(mma_bf16, d, a, b, c);
}

void ldmatrix(std::uint32_t* registers, int matrices, bool transposed, const void* row_address) {
    MatrixRow row;
    const int lane = static_cast<int>((threadIdx.x + threadIdx.y * blockDim.x +
                                       threadIdx.z * blockDim.x * blockDim.y) % 32);
    if (lane < 8 * matrices) {
        if (std::string error = check_row_address(row_address); !error.empty()) report_fault(std::move(error));
        abandon_if_faulted();
        row.address = reinterpret_cast<std::uintptr_t>(row_address);
        // Element by element: ThreadSanitizer does not see memcpy's reads made
        // on a fiber (async_copy.cpp), and this read must be this thread's.
        const auto* elements = static_cast<const std::uint16_t*>(row_address);
        for (int i = 0; i < 8; ++i) row.elements[i] = elements[i];
    }
    MatrixFragment fragment;
    const int size_index = matrices == 1 ? 0 : matrices == 2 ? 1 : 2;
    warp_aligned(ldmatrix_instructions[transposed ? 1 : 0][size_index], &row, &fragment);
    std::memcpy(registers, fragment.registers, sizeof(std::uint32_t) * static_cast<std::size_t>(matrices));
}

}  // namespace ladon::emu::detail
