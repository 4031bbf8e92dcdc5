#include "engine/io/mapped_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "ladon/error.hpp"

namespace ladon::io {
namespace {

[[noreturn]] void fail(std::string_view kind, const std::string& path, std::string_view action, int error) {
    throw Error(
        fmt::format("{} {}: {} ({}); expected a readable regular file", kind, path, action, std::strerror(error)));
}

// Closes the descriptor on every path out of the constructor; the mapping
// outlives it.
struct Descriptor {
    int fd;
    ~Descriptor() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

MappedFile::MappedFile(const std::string& path, std::string_view kind) : path_(path) {
    const Descriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (file.fd < 0) fail(kind, path, "cannot open", errno);
    struct stat status {};
    if (::fstat(file.fd, &status) != 0) fail(kind, path, "cannot stat", errno);
    if (S_ISDIR(status.st_mode)) fail(kind, path, "cannot map", EISDIR);
    if (!S_ISREG(status.st_mode)) {
        throw Error(fmt::format("{} {}: not a regular file; expected a readable regular file", kind, path));
    }
    size_ = static_cast<size_t>(status.st_size);
    if (size_ == 0) return;
    void* mapping = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, file.fd, 0);
    if (mapping == MAP_FAILED) fail(kind, path, "cannot map", errno);
    data_ = static_cast<const std::byte*>(mapping);
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        release();
        path_ = std::move(other.path_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

void MappedFile::release() noexcept {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
}

}  // namespace ladon::io
