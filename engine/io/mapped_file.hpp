#pragma once
// A whole file mapped read-only into memory, unmapped when the object dies.
// Readers of NPY and safetensors files parse straight from the mapping, so a
// dataset larger than memory is paged in on demand rather than loaded.
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace ladon::io {

class MappedFile {
public:
    // `kind` names the file in error messages ("NPY file", "checkpoint"):
    // "<kind> <path>: cannot open (No such file or directory) ...".
    MappedFile(const std::string& path, std::string_view kind);
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    // The file's bytes as they were when it was opened. Another process
    // truncating the file while it is mapped makes reads past the new end
    // fault (SIGBUS): the price of mapping instead of copying.
    std::span<const std::byte> bytes() const { return {data_, size_}; }
    const std::string& path() const { return path_; }

private:
    void release() noexcept;

    std::string path_;
    const std::byte* data_ = nullptr;  // null for an empty file (mmap cannot map 0 bytes)
    size_t size_ = 0;
};

}  // namespace ladon::io
