#pragma once
// Shared-memory bank conflicts of the checked primitives (internal to the
// emulator; the counts are read through tensor_core.hpp). Shared memory has
// 32 banks of 4-byte words; a phase costs one wavefront per distinct word
// its busiest bank must deliver (the same word to several lanes is one).
#include <cstdint>
#include <span>

namespace ladon::emu::detail {

struct BankAccess {
    std::uintptr_t address;
    std::uint32_t bytes;
};
enum class BankCounter { ldmatrix, cp_async };

// Wavefronts one phase takes (0 for no access).
int phase_wavefronts(std::span<const BankAccess> phase);
// Adds the phase to the counter's totals.
void count_bank_phase(BankCounter counter, std::span<const BankAccess> phase);

}  // namespace ladon::emu::detail
