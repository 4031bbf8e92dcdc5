#pragma once
// Writes a file so that a reader (or a crash) sees either the previous file at
// that path or the complete new one, never a part: the bytes go to a temporary
// file `<path>.tmp-<pid>` in the same folder, which is synced, renamed over
// `path`, and then the folder is synced so the rename itself is durable.
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace ladon::io {

// The temporary file's name for `path` in this process.
std::string atomic_temp_path(const std::string& path);

class AtomicFileWriter {
public:
    // Creates (or truncates) the temporary file. `kind` names the file in
    // error messages ("checkpoint", "NPY file"). Every failure throws a
    // ladon::Error naming `path` and the OS error, after removing the
    // temporary file; a previous file at `path` is left as it was.
    AtomicFileWriter(const std::string& path, std::string_view kind);
    // Without commit(): closes and removes the temporary file.
    ~AtomicFileWriter();
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

    void write(std::span<const std::byte> bytes);
    void write(const void* data, size_t bytes) { write({static_cast<const std::byte*>(data), bytes}); }
    // Syncs, closes and renames the file over `path`, then syncs the folder.
    void commit();

private:
    [[noreturn]] void fail(std::string_view action, int error);
    void discard() noexcept;

    std::string path_;
    std::string kind_;
    std::string temp_path_;
    int fd_ = -1;
    bool temp_exists_ = false;
    bool renamed_ = false;  // the new file is in place; only the folder sync remains
};

}  // namespace ladon::io
