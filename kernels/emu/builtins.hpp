#pragma once
// CUDA's built-in variables. Each worker thread runs one block at a time and
// switches between that block's fibers itself, setting `threadIdx` before each
// switch, so thread_local values are exactly per emulated thread as long as a
// fiber never changes OS thread (it never does) and every switch is an opaque
// call after which the compiler re-reads them (pitfall 10). `inline` with a
// constant initialiser: no TLS init wrapper on each access.
#include <cstddef>
#include <cstdint>

#include "kernels/emu/keywords.hpp"

inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};
constexpr int warpSize = 32;

namespace ladon::emu::detail {

// Set by the worker for the block it runs: the block's dynamic shared memory
// and a number no other block execution in this process has (it tells static
// shared arrays when a new block starts; see shared_memory.hpp).
inline thread_local void* dynamic_shared_memory = nullptr;
inline thread_local std::size_t dynamic_shared_bytes = 0;
// The kernel's cudaFuncAttributeMaxDynamicSharedMemorySize, 0 if never set.
inline thread_local std::size_t opted_in_dynamic_shared_bytes = 0;
inline thread_local std::uint64_t block_serial = 0;

// Fills memory nobody has written yet: device allocations, shared memory at
// the start of each block, a shuffle's read from a lane outside the mask. All
// bytes 0xFF: a NaN as float or double, -1 as a signed integer, so a read
// before a write shows up in results instead of passing silently.
constexpr unsigned char poison_byte = 0xFF;

}  // namespace ladon::emu::detail
