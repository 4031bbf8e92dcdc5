#pragma once
// Names a kernel in fault messages from its address alone, so the launch
// helper needs nothing but the function pointer: the symbol is looked up in
// the loaded object's ELF symbol table, which (unlike dladdr's dynamic
// symbols) also holds static functions and those in anonymous namespaces.
#include <string>

namespace ladon::emu::detail {

// The demangled name of the function starting at `address` ("ns::scale(float*, int)"),
// or "the kernel at 0x..." when the binary has no symbol for it (stripped).
std::string function_name(const void* address);

}  // namespace ladon::emu::detail
