#pragma once
// Each kernel's __launch_bounds__ (its maximum threads per block), which g++
// drops: cmake/launch_bounds.cmake reads them from nvcc's PTX of the same
// source and generates a table that registers itself here when the program
// starts. A launch of a kernel with more threads than its bound fails as on
// a GPU (grid.cpp). Kernels nvcc never compiled (test-only kernels, a build
// without nvcc) or whose names nvcc mangles differently (anonymous
// namespaces) have no known bound and are not checked.
#include <cstddef>

namespace ladon::emu {

struct LaunchBound {
    const char* symbol;   // the kernel's mangled name
    unsigned max_threads; // .maxntid x * y * z
};

// Adds a generated table (kept, not copied); returns true so that it can
// initialise a namespace-scope constant.
bool register_launch_bounds(const LaunchBound* bounds, std::size_t count);

namespace detail {

// The bound of the kernel at `kernel`, 0 when none is known. The first call
// after a registration resolves the table's names to addresses through the
// program's symbol table (one pass); later calls are a lookup.
unsigned launch_bound(const void* kernel);

}  // namespace detail
}  // namespace ladon::emu
