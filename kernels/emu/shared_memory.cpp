// The running block's shared memory: which arrays it has (for the address
// checks of cp.async and ldmatrix) and whether they fit CUDA's limits, and
// each kernel's use, for the blocks-per-SM report.
#include "kernels/emu/shared_memory.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kernels/emu/grid.hpp"
#include "kernels/emu/sync.hpp"

namespace ladon::emu::detail {
namespace {

struct BlockSharedArrays {
    std::uint64_t block = 0;
    std::vector<std::pair<std::uintptr_t, std::size_t>> arrays;
    std::size_t static_bytes = 0;
};
thread_local BlockSharedArrays current_block;  // the worker's running block

BlockSharedArrays& arrays_of_running_block() {
    if (current_block.block != block_serial) current_block = BlockSharedArrays{block_serial, {}, 0};
    return current_block;
}

bool lies_in(std::uintptr_t address, std::size_t bytes, std::uintptr_t start, std::size_t size) {
    return address >= start && address - start <= size && bytes <= size - (address - start);
}

struct SharedUseTable {
    std::mutex mutex;
    std::map<const void*, SharedMemoryUse> kernels;
};
SharedUseTable& shared_use_table() {
    static SharedUseTable table;
    return table;
}

std::string kib(std::size_t bytes) { return std::to_string(bytes) + " bytes"; }

// What CUDA refuses for a block with `static_bytes` of static shared memory.
std::string over_limit(std::size_t static_bytes) {
    const std::size_t dynamic = dynamic_shared_bytes, opted_in = opted_in_dynamic_shared_bytes;
    if (static_bytes > max_static_shared_bytes)
        return kib(static_bytes) + " of static shared memory exceed the " + kib(max_static_shared_bytes) +
               " a kernel may declare (ptxas refuses it)";
    if (opted_in == 0 && static_bytes + dynamic > default_max_dynamic_shared_bytes)
        return kib(static_bytes) + " of static and " + kib(dynamic) + " of dynamic shared memory exceed the " +
               kib(default_max_dynamic_shared_bytes) +
               " a block gets without cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize): the "
               "GPU refuses the launch";
    if (opted_in != 0 && static_bytes + opted_in > max_dynamic_shared_bytes_optin)
        return kib(static_bytes) + " of static shared memory and the " + kib(opted_in) +
               " of dynamic opted in exceed the " + kib(max_dynamic_shared_bytes_optin) +
               " a block may have: the GPU refuses cudaFuncSetAttribute";
    return {};
}

}  // namespace

void note_static_shared(const void* array, std::size_t bytes) {
    std::string error;
    {
        const tsan::Unchecked unchecked;
        BlockSharedArrays& block = arrays_of_running_block();
        block.arrays.emplace_back(reinterpret_cast<std::uintptr_t>(array), bytes);
        block.static_bytes += bytes;
        error = over_limit(block.static_bytes);
    }
    if (!error.empty()) report_fault(std::move(error));
    abandon_if_faulted();
}

bool is_shared_memory(const void* address, std::size_t bytes) {
    const tsan::Unchecked unchecked;
    const auto start = reinterpret_cast<std::uintptr_t>(address);
    if (dynamic_shared_memory != nullptr &&
        lies_in(start, bytes, reinterpret_cast<std::uintptr_t>(dynamic_shared_memory), dynamic_shared_bytes))
        return true;
    const BlockSharedArrays& block = arrays_of_running_block();
    return std::any_of(block.arrays.begin(), block.arrays.end(),
                       [&](const auto& array) { return lies_in(start, bytes, array.first, array.second); });
}

void record_shared_use(const void* kernel, std::size_t dynamic_bytes) {
    const std::size_t static_bytes = arrays_of_running_block().static_bytes;
    SharedUseTable& table = shared_use_table();
    std::lock_guard lock(table.mutex);
    SharedMemoryUse& use = table.kernels[kernel];
    use.static_bytes = std::max(use.static_bytes, static_bytes);
    use.dynamic_bytes = dynamic_bytes;
    const std::size_t per_block = use.static_bytes + use.dynamic_bytes + shared_reserved_per_block;
    use.blocks_per_sm = static_cast<int>(std::min<std::size_t>(max_blocks_per_sm, shared_bytes_per_sm / per_block));
}

}  // namespace ladon::emu::detail

namespace ladon::emu {

std::optional<SharedMemoryUse> shared_memory_use(const void* kernel) {
    detail::SharedUseTable& table = detail::shared_use_table();
    std::lock_guard lock(table.mutex);
    const auto found = table.kernels.find(kernel);
    if (found == table.kernels.end()) return std::nullopt;
    return found->second;
}

}  // namespace ladon::emu
