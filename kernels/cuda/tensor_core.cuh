#pragma once
// Warp-level tensor-core and asynchronous-copy primitives, one small function
// each. Under nvcc each is inline PTX (sm_80 and later); under the emulator
// each is implemented from the PTX ISA's fragment layouts and checked
// (kernels/emu/tensor_core.hpp: addresses, poisoned operands, pending copies,
// bank conflicts).
//
// Fragments (groupID g = lane / 4, t = lane % 4; A row-major M x K, B K x N
// given column by column, C and D row-major M x N):
//   mma_m16n8k8_tf32:  a[i] = A(g + 8 (i & 1), t + 4 (i >> 1)), b[i] = B(t + 4 i, g)
//   mma_m16n8k16_bf16: a[i] = A(g + 8 (i & 1), 2t + 8 (i >> 1) + {0 low, 1 high}),
//                      b[i] = B(2t + 8 i + {0 low, 1 high}, g)
//   both:              c[i], d[i] = C(g + 8 (i >> 1), 2t + (i & 1))
// TF32 operands should come from to_tf32 (the tensor cores ignore the low 13
// bits, which truncates); BF16 pairs from pack_bf16x2. Accumulation is FP32
// in an order PTX leaves unspecified.
#include <cstdint>

#include "kernels/cuda/device.hpp"

namespace ladon::cuda::tensor_core {

// cvt.rna.tf32.f32: round to nearest, ties away from zero, as a .b32.
__device__ __forceinline__ std::uint32_t to_tf32(float value) {
#if defined(__CUDACC__)
    std::uint32_t bits;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(bits) : "f"(value));
    return bits;
#else
    return ladon::emu::detail::round_to_tf32(value);
#endif
}

// Two floats rounded to BF16 (nearest, ties to even): `low` in bits 0-15,
// `high` in bits 16-31, the order of a fragment's elements.
__device__ __forceinline__ std::uint32_t pack_bf16x2(float low, float high) {
#if defined(__CUDACC__)
    std::uint32_t bits;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(bits) : "f"(high), "f"(low));
    return bits;
#else
    return std::uint32_t{ladon::emu::detail::round_to_bf16(low)} |
           std::uint32_t{ladon::emu::detail::round_to_bf16(high)} << 16;
#endif
}

// d = a b + c for a 16x8x8 TF32 tile, every lane of the warp together.
__device__ __forceinline__ void mma_m16n8k8_tf32(float (&d)[4], const std::uint32_t (&a)[4],
                                                 const std::uint32_t (&b)[2], const float (&c)[4]) {
#if defined(__CUDACC__)
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%10,%11,%12,%13};"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
#else
    ladon::emu::detail::mma_m16n8k8_tf32(d, a, b, c);
#endif
}

// d = a b + c for a 16x8x16 BF16 tile.
__device__ __forceinline__ void mma_m16n8k16_bf16(float (&d)[4], const std::uint32_t (&a)[4],
                                                  const std::uint32_t (&b)[2], const float (&c)[4]) {
#if defined(__CUDACC__)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%10,%11,%12,%13};"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
#else
    ladon::emu::detail::mma_m16n8k16_bf16(d, a, b, c);
#endif
}

// ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16: Matrices 8x8
// matrices of 16-bit elements; lane 8 i + r gives the 16-byte-aligned shared
// address of row r of matrix i (lanes past 8 Matrices give none). Register i
// of lane l holds row l / 4, elements 2 (l % 4) and the next of matrix i, or
// with Transposed, element l / 4 of rows 2 (l % 4) and the next.
template <int Matrices, bool Transposed = false>
__device__ __forceinline__ void ldmatrix(std::uint32_t (&registers)[Matrices], const void* row_address) {
    static_assert(Matrices == 1 || Matrices == 2 || Matrices == 4, "ldmatrix loads 1, 2 or 4 matrices");
#if defined(__CUDACC__)
    const auto address = static_cast<std::uint32_t>(__cvta_generic_to_shared(row_address));
    if constexpr (Matrices == 1 && !Transposed)
        asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];" : "=r"(registers[0]) : "r"(address));
    else if constexpr (Matrices == 1)
        asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];" : "=r"(registers[0]) : "r"(address));
    else if constexpr (Matrices == 2 && !Transposed)
        asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];"
                     : "=r"(registers[0]), "=r"(registers[1]) : "r"(address));
    else if constexpr (Matrices == 2)
        asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];"
                     : "=r"(registers[0]), "=r"(registers[1]) : "r"(address));
    else if constexpr (!Transposed)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(registers[0]), "=r"(registers[1]), "=r"(registers[2]), "=r"(registers[3])
                     : "r"(address));
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(registers[0]), "=r"(registers[1]), "=r"(registers[2]), "=r"(registers[3])
                     : "r"(address));
#else
    ladon::emu::detail::ldmatrix(registers, Matrices, Transposed, row_address);
#endif
}

// cp.async of Bytes (4, 8 or 16) from global to shared memory, both aligned
// to Bytes: `source_bytes` are read and the rest zero-filled (0 reads
// nothing: a tile's out-of-range part). Complete only after the
// cp_async_wait that covers its commit group.
template <int Bytes>
__device__ __forceinline__ void cp_async(void* shared_destination, const void* global_source, int source_bytes = Bytes) {
    static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
#if defined(__CUDACC__)
    const auto destination = static_cast<std::uint32_t>(__cvta_generic_to_shared(shared_destination));
    if constexpr (Bytes == 16)  // .cg: cached in L2 only, for tiles read once per block
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(destination), "l"(global_source),
                     "r"(source_bytes)
                     : "memory");
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;" ::"r"(destination), "l"(global_source),
                     "n"(Bytes), "r"(source_bytes)
                     : "memory");
#else
    ladon::emu::detail::cp_async(shared_destination, global_source, Bytes, source_bytes);
#endif
}

// cp.async.commit_group: the copies issued since the last commit form a group.
__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDACC__)
    asm volatile("cp.async.commit_group;" ::: "memory");
#else
    ladon::emu::detail::cp_async_commit();
#endif
}

// cp.async.wait_group: waits until at most NewestGroupsLeft committed groups
// are pending. Other threads see the copies only after a barrier that
// follows their own thread's wait.
template <int NewestGroupsLeft>
__device__ __forceinline__ void cp_async_wait() {
    static_assert(NewestGroupsLeft >= 0 && NewestGroupsLeft <= 7, "cp.async.wait_group takes 0 to 7");
#if defined(__CUDACC__)
    asm volatile("cp.async.wait_group %0;" ::"n"(NewestGroupsLeft) : "memory");
#else
    ladon::emu::detail::cp_async_wait(NewestGroupsLeft);
#endif
}

}  // namespace ladon::cuda::tensor_core
