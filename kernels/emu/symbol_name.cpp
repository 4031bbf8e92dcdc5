#include "kernels/emu/symbol_name.hpp"

#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>

namespace ladon::emu::detail {
namespace {

std::string demangle(const char* name) {
    int status = 0;
    char* demangled = abi::__cxa_demangle(name, nullptr, nullptr, &status);
    if (status != 0 || demangled == nullptr) return name;
    std::string result(demangled);
    std::free(demangled);
    return result;
}

// The loaded object that holds `address`: its file and the address the
// object's symbol values are relative to.
struct LoadedObject {
    std::uintptr_t address;
    std::string path;
    std::uintptr_t load_bias = 0;
    bool found = false;
};

int find_object(dl_phdr_info* info, std::size_t, void* data) {
    auto* object = static_cast<LoadedObject*>(data);
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& segment = info->dlpi_phdr[i];
        const std::uintptr_t start = info->dlpi_addr + segment.p_vaddr;
        if (segment.p_type != PT_LOAD || object->address < start || object->address - start >= segment.p_memsz)
            continue;
        // The main program's name is empty.
        object->path = info->dlpi_name[0] != '\0' ? info->dlpi_name : "/proc/self/exe";
        object->load_bias = info->dlpi_addr;
        object->found = true;
        return 1;
    }
    return 0;
}

// A read-only view of a whole file.
class MappedFile {
public:
    explicit MappedFile(const std::string& path) {
        const int descriptor = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (descriptor < 0) return;
        struct stat status {};
        if (fstat(descriptor, &status) == 0 && status.st_size > 0) {
            void* data = mmap(nullptr, static_cast<std::size_t>(status.st_size), PROT_READ, MAP_PRIVATE, descriptor, 0);
            if (data != MAP_FAILED) {
                data_ = static_cast<const unsigned char*>(data);
                size_ = static_cast<std::size_t>(status.st_size);
            }
        }
        close(descriptor);
    }
    ~MappedFile() {
        if (data_ != nullptr) munmap(const_cast<unsigned char*>(data_), size_);
    }
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    // A pointer to `count` objects of T at `offset`, or null if out of bounds.
    template <typename T>
    const T* at(std::uint64_t offset, std::uint64_t count = 1) const {
        if (data_ == nullptr || offset > size_ || count > (size_ - offset) / sizeof(T)) return nullptr;
        return reinterpret_cast<const T*>(data_ + offset);
    }

private:
    const unsigned char* data_ = nullptr;
    std::size_t size_ = 0;
};

// Calls visit(value, name) for each function symbol of the file's symbol
// tables until it returns true; whether one did.
template <typename Visit>
bool for_each_function_symbol(const MappedFile& file, Visit visit) {
    const auto* header = file.at<ElfW(Ehdr)>(0);
    if (header == nullptr || std::memcmp(header->e_ident, ELFMAG, SELFMAG) != 0 ||
        header->e_shentsize != sizeof(ElfW(Shdr)))
        return false;
    const auto* sections = file.at<ElfW(Shdr)>(header->e_shoff, header->e_shnum);
    if (sections == nullptr) return false;
    for (std::size_t s = 0; s < header->e_shnum; ++s) {
        const ElfW(Shdr)& table = sections[s];
        if ((table.sh_type != SHT_SYMTAB && table.sh_type != SHT_DYNSYM) || table.sh_link >= header->e_shnum) continue;
        const ElfW(Shdr)& strings = sections[table.sh_link];
        const std::uint64_t count = table.sh_size / sizeof(ElfW(Sym));
        const auto* symbols = file.at<ElfW(Sym)>(table.sh_offset, count);
        const auto* names = file.at<char>(strings.sh_offset, strings.sh_size);
        if (symbols == nullptr || names == nullptr) continue;
        for (std::uint64_t i = 0; i < count; ++i) {
            const ElfW(Sym)& symbol = symbols[i];
            if (ELF64_ST_TYPE(symbol.st_info) != STT_FUNC || symbol.st_name >= strings.sh_size) continue;
            const char* name = names + symbol.st_name;
            if (std::memchr(name, '\0', strings.sh_size - symbol.st_name) != nullptr && visit(symbol.st_value, name))
                return true;
        }
    }
    return false;
}

std::optional<std::string> function_at(const MappedFile& file, std::uint64_t value) {
    std::optional<std::string> found;
    for_each_function_symbol(file, [&](std::uint64_t symbol_value, const char* name) {
        if (symbol_value != value) return false;
        found = demangle(name);
        return true;
    });
    return found;
}

}  // namespace

std::string function_name(const void* address) {
    LoadedObject object{reinterpret_cast<std::uintptr_t>(address), {}};
    dl_iterate_phdr(&find_object, &object);
    if (object.found) {
        const MappedFile file(object.path);
        if (auto name = function_at(file, object.address - object.load_bias)) return *name;
    }
    char text[48];
    std::snprintf(text, sizeof text, "the kernel at %p", address);
    return text;
}

void for_each_function(const void* anchor, const std::function<void(const void*, const char*)>& visit) {
    LoadedObject object{reinterpret_cast<std::uintptr_t>(anchor), {}};
    dl_iterate_phdr(&find_object, &object);
    if (!object.found) return;
    const MappedFile file(object.path);
    for_each_function_symbol(file, [&](std::uint64_t value, const char* name) {
        visit(reinterpret_cast<const void*>(object.load_bias + value), name);
        return false;
    });
}

}  // namespace ladon::emu::detail
