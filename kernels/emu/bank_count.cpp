#include "kernels/emu/bank_count.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <vector>

#include "kernels/emu/tensor_core.hpp"
#include "kernels/emu/tsan.hpp"

namespace ladon::emu::detail {
namespace {

constexpr std::uintptr_t banks = 32, bank_bytes = 4;

struct Totals {
    std::atomic<std::uint64_t> phases{0};
    std::atomic<std::uint64_t> wavefronts{0};
};
std::array<Totals, 2> totals;  // by BankCounter

}  // namespace

int phase_wavefronts(std::span<const BankAccess> phase) {
    std::vector<std::uintptr_t> words;
    for (const BankAccess& access : phase)
        for (std::uintptr_t word = access.address / bank_bytes; word * bank_bytes < access.address + access.bytes;
             ++word)
            words.push_back(word);
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end()), words.end());
    std::array<int, banks> per_bank{};
    for (const std::uintptr_t word : words) ++per_bank[word % banks];
    return *std::max_element(per_bank.begin(), per_bank.end());
}

void count_bank_phase(BankCounter counter, std::span<const BankAccess> phase) {
    const tsan::Unchecked unchecked;
    const int wavefronts = phase_wavefronts(phase);
    if (wavefronts == 0) return;
    Totals& total = totals[static_cast<std::size_t>(counter)];
    total.phases.fetch_add(1, std::memory_order_relaxed);
    total.wavefronts.fetch_add(static_cast<std::uint64_t>(wavefronts), std::memory_order_relaxed);
}

}  // namespace ladon::emu::detail

namespace ladon::emu {

SharedBankConflicts shared_bank_conflicts() {
    const auto read = [](detail::BankCounter counter) {
        const auto& total = detail::totals[static_cast<std::size_t>(counter)];
        return BankCounts{total.phases.load(), total.wavefronts.load()};
    };
    return {read(detail::BankCounter::ldmatrix), read(detail::BankCounter::cp_async)};
}

void reset_shared_bank_conflicts() {
    for (auto& total : detail::totals) {
        total.phases = 0;
        total.wavefronts = 0;
    }
}

}  // namespace ladon::emu
