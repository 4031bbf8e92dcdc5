#include "engine/io/atomic_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ladon/error.hpp"

namespace ladon::io {

std::string atomic_temp_path(const std::string& path) { return fmt::format("{}.tmp-{}", path, ::getpid()); }

AtomicFileWriter::AtomicFileWriter(const std::string& path, std::string_view kind)
    : path_(path), kind_(kind), temp_path_(atomic_temp_path(path)) {
    // O_TRUNC rather than O_EXCL: a temporary file left by a crashed process
    // whose pid this one reuses is ours to overwrite.
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        const int error = errno;  // read before fmt::format can change it
        fail(fmt::format("cannot create the temporary file {}", temp_path_), error);
    }
    temp_exists_ = true;
}

AtomicFileWriter::~AtomicFileWriter() { discard(); }

void AtomicFileWriter::write(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
        const ssize_t written = ::write(fd_, bytes.data(), bytes.size());
        if (written < 0) {
            const int error = errno;
            if (error == EINTR) continue;
            fail(fmt::format("cannot write the temporary file {}", temp_path_), error);
        }
        bytes = bytes.subspan(static_cast<size_t>(written));
    }
}

void AtomicFileWriter::commit() {
    if (::fsync(fd_) != 0) {
        const int error = errno;
        fail(fmt::format("cannot sync the temporary file {}", temp_path_), error);
    }
    const int fd = fd_;
    fd_ = -1;
    // close() can report a deferred write error (NFS): the file is then not
    // known to be complete.
    if (::close(fd) != 0) {
        const int error = errno;
        fail(fmt::format("cannot close the temporary file {}", temp_path_), error);
    }
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
        const int error = errno;
        fail(fmt::format("cannot rename the temporary file {} over it", temp_path_), error);
    }
    temp_exists_ = false;
    renamed_ = true;

    const auto parent = std::filesystem::path(path_).parent_path();
    const std::string folder = parent.empty() ? std::string(".") : parent.string();
    const int folder_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (folder_fd < 0) {
        const int error = errno;
        fail(fmt::format("written, but cannot open its folder {} to sync it", folder), error);
    }
    const int synced = ::fsync(folder_fd);
    const int sync_error = errno;
    ::close(folder_fd);
    // EINVAL: the file system cannot sync folders (some FUSE mounts); the
    // rename is then as durable as that file system makes it.
    if (synced != 0 && sync_error != EINVAL) {
        fail(fmt::format("written, but cannot sync its folder {}", folder), sync_error);
    }
}

void AtomicFileWriter::fail(std::string_view action, int error) {
    discard();
    throw Error(fmt::format("{} {}: {} ({}){}", kind_, path_, action, std::strerror(error),
                            renamed_ ? "" : "; the previous file at this path, if any, is unchanged"));
}

void AtomicFileWriter::discard() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (temp_exists_) ::unlink(temp_path_.c_str());
    temp_exists_ = false;
}

}  // namespace ladon::io
