#pragma once
// The tensor-core and asynchronous-copy primitives under the emulator, as
// kernels/cuda/tensor_core.cuh calls them (inline PTX under nvcc):
// - mma.sync.aligned m16n8k8 (TF32) and m16n8k16 (BF16), FP32 accumulate;
// - ldmatrix.sync.aligned.m8n8 .x1/.x2/.x4, optionally .trans;
// - cp.async of 4, 8 or 16 bytes with zero-fill, commit_group and wait_group.
// The warp instructions are rendezvous of all 32 lanes (sync.hpp) whose
// fragments follow the PTX ISA's layouts lane by lane. Every address is
// checked (alignment, shared or device memory), an mma operand holding the
// poison pattern is a fault, a cp.async's destination holds the poison (and,
// under ASan, is poisoned) until its wait_group copies, and a thread that
// ends with copies pending faults. kernels/emu/README.md has the details.
#include <bit>
#include <cstdint>

namespace ladon::emu::detail {

// cvt.rna.tf32.f32: to 10 mantissa bits, ties away from zero, the low 13
// bits zero. Bit-exact with the GPU for finite values and infinities; a NaN
// stays a NaN (the GPU's payload is canonical, this one keeps the input's,
// so the poison pattern stays recognisable).
inline std::uint32_t round_to_tf32(float value) {
    const auto bits = std::bit_cast<std::uint32_t>(value);
    if ((bits & 0x7f800000u) == 0x7f800000u) return (bits & 0x007fffffu) != 0 ? bits | 0x00400000u : bits;
    return (bits + 0x1000u) & 0xffffe000u;  // adding half a unit to the magnitude rounds ties away from zero
}

// cvt.rn.bf16.f32: round to nearest, ties to even. NaN as above.
inline std::uint16_t round_to_bf16(float value) {
    const auto bits = std::bit_cast<std::uint32_t>(value);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>(bits >> 16 | 0x0040u);
    return static_cast<std::uint16_t>((bits + 0x7fffu + (bits >> 16 & 1u)) >> 16);
}

// What the tensor cores read of an operand register: TF32 ignores the low
// 13 bits; a BF16 is the high half of an FP32.
inline float tf32_value(std::uint32_t bits) { return std::bit_cast<float>(bits & 0xffffe000u); }
inline float bf16_value(std::uint16_t bits) { return std::bit_cast<float>(std::uint32_t{bits} << 16); }

void mma_m16n8k8_tf32(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2], const float (&c)[4]);
void mma_m16n8k16_bf16(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2], const float (&c)[4]);
// `matrices` 1, 2 or 4; lane 8 i + r gives row r of matrix i.
void ldmatrix(std::uint32_t* registers, int matrices, bool transposed, const void* row_address);
void cp_async(void* shared_destination, const void* global_source, int bytes, int source_bytes);
void cp_async_commit();
// Completes every committed group but the `newest_groups_left` newest.
void cp_async_wait(int newest_groups_left);

}  // namespace ladon::emu::detail

namespace ladon::emu {

// Shared-memory bank conflicts of the checked primitives, summed over every
// launch since the last reset. A phase is what the hardware serves at once:
// one 8x16-byte matrix of an ldmatrix; 8, 16 or 32 lanes of a warp's 16-,
// 8- or 4-byte cp.async (the k-th copy of each lane being one instruction).
// A phase takes as many wavefronts as the most distinct 4-byte words any of
// the 32 banks must deliver; conflict-free code has wavefronts == phases.
struct BankCounts {
    std::uint64_t phases = 0;
    std::uint64_t wavefronts = 0;
    std::uint64_t conflicts() const { return wavefronts - phases; }
};
struct SharedBankConflicts {
    BankCounts ldmatrix;
    BankCounts cp_async;
};
SharedBankConflicts shared_bank_conflicts();
void reset_shared_bank_conflicts();

}  // namespace ladon::emu
