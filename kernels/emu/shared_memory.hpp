#pragma once
// Block-shared memory under the emulator. Kernels write
//     LADON_SHARED(float, tile, [16][16]);   // __shared__ float tile[16][16];
//     LADON_DYNAMIC_SHARED(float, buffer);   // sized by the launch
// (kernels/cuda/device.hpp gives the nvcc meaning of both).
//
// Static arrays are `static thread_local`: a block runs wholly on one worker,
// so each worker's copy is exactly one block's shared memory. ASan does not
// check thread-local storage, though, so an overflow there would silently hit
// the neighbouring array (pitfall 2). The sanitizer build defines
// LADON_EMU_PLAIN_STATIC_SHARED: plain `static` arrays, which ASan surrounds
// with redzones, and a single worker so no two blocks share them at once.
//
// The first thread of each block that reaches the declaration fills the array
// with the poison pattern, so a read before any write in this block shows up
// (as NaN for floats) instead of returning the previous block's data
// (pitfall 3). The declaration must therefore stand in a function body (as
// every `__shared__` in a kernel or __device__ function does).
#include <cstdint>
#include <cstring>

#include "kernels/emu/builtins.hpp"
#include "kernels/emu/tsan.hpp"

namespace ladon::emu::detail {

// Each static array of the block, as its declaration is first reached: it
// counts towards the block's shared memory, which must fit CUDA's limits
// (48 KiB in all without opting in; a kernel fault names the sizes), and
// cp.async and ldmatrix may address it.
void note_static_shared(const void* array, std::size_t bytes);
// Whether [address, address + bytes) lies inside one of the running block's
// shared arrays or its dynamic shared memory.
bool is_shared_memory(const void* address, std::size_t bytes);

inline void poison_once_per_block(void* storage, std::size_t bytes, std::uint64_t& poisoned_for_block) {
    if (poisoned_for_block == block_serial) return;
    std::memset(storage, poison_byte, bytes);
    poisoned_for_block = block_serial;
    note_static_shared(storage, bytes);
}

// The race-checking build: the array `key` stands for, in memory allocated
// afresh for each block (poisoned), so ThreadSanitizer holds no access of
// another block's against it. Unchecked: the allocation, the bookkeeping
// and the poison are the emulator's.
void* block_shared_array(const void* key, std::size_t bytes);

}  // namespace ladon::emu::detail

#if defined(LADON_EMU_PLAIN_STATIC_SHARED)
#define LADON_EMU_SHARED_STORAGE static
#else
#define LADON_EMU_SHARED_STORAGE static thread_local
#endif

#if defined(LADON_EMU_TSAN)
#define LADON_SHARED(type, name, dimensions)                                         \
    static const char ladon_emu_key_##name = 0;                                       \
    using ladon_emu_type_##name = type dimensions;                                    \
    ladon_emu_type_##name& name = *static_cast<ladon_emu_type_##name*>(               \
        ::ladon::emu::detail::block_shared_array(&ladon_emu_key_##name, sizeof(ladon_emu_type_##name)))
#else
#define LADON_SHARED(type, name, dimensions)                                  \
    LADON_EMU_SHARED_STORAGE type name dimensions;                            \
    LADON_EMU_SHARED_STORAGE std::uint64_t ladon_emu_poisoned_for_##name = 0; \
    ::ladon::emu::detail::poison_once_per_block(&name, sizeof(name), ladon_emu_poisoned_for_##name)
#endif

// The launch allocates exactly `shared_bytes` (16-byte aligned) per worker and
// poisons it before each block, so ASan reports any access past the size the
// launch asked for.
#define LADON_DYNAMIC_SHARED(type, name) \
    type* const name = static_cast<type*>(::ladon::emu::detail::dynamic_shared_memory)
