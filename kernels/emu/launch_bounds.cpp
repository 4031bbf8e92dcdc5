#include "kernels/emu/launch_bounds.hpp"

#include <mutex>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/emu/symbol_name.hpp"

namespace ladon::emu {
namespace {

struct Registry {
    std::mutex mutex;
    std::vector<std::pair<const LaunchBound*, std::size_t>> tables;
    bool resolved = true;                                  // no table waits for its addresses
    std::unordered_map<const void*, unsigned> by_address;  // resolved bounds
};

// A function-local static: the generated tables register during static
// initialisation, in no particular order with this file's.
Registry& registry() {
    static Registry instance;
    return instance;
}

// Every registered name's address, from one pass over the symbols of the
// object holding `anchor` (the kernels are linked into the program).
void resolve(Registry& r, const void* anchor) {
    std::unordered_map<std::string_view, unsigned> by_name;
    for (const auto& [bounds, count] : r.tables)
        for (std::size_t i = 0; i < count; ++i) by_name.emplace(bounds[i].symbol, bounds[i].max_threads);
    detail::for_each_function(anchor, [&](const void* address, const char* name) {
        if (const auto found = by_name.find(name); found != by_name.end()) r.by_address[address] = found->second;
    });
    r.resolved = true;
}

}  // namespace

bool register_launch_bounds(const LaunchBound* bounds, std::size_t count) {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    r.tables.emplace_back(bounds, count);
    r.resolved = false;
    return true;
}

namespace detail {

unsigned launch_bound(const void* kernel) {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    if (!r.resolved) resolve(r, kernel);
    const auto found = r.by_address.find(kernel);
    return found == r.by_address.end() ? 0 : found->second;
}

}  // namespace detail
}  // namespace ladon::emu
