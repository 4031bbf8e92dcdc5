#pragma once
// Names a kernel in fault messages from its address alone, so the launch
// helper needs nothing but the function pointer: the symbol is looked up in
// the loaded object's ELF symbol table, which (unlike dladdr's dynamic
// symbols) also holds static functions and those in anonymous namespaces.
#include <functional>
#include <string>

namespace ladon::emu::detail {

// The demangled name of the function starting at `address` ("ns::scale(float*, int)"),
// or "the kernel at 0x..." when the binary has no symbol for it (stripped).
std::string function_name(const void* address);

// Calls visit(address, mangled name) for every function symbol of the loaded
// object (the program or a shared library) that holds `anchor`.
void for_each_function(const void* anchor, const std::function<void(const void*, const char*)>& visit);

}  // namespace ladon::emu::detail
