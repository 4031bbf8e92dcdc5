// libFuzzer: read_idx on arbitrary bytes, plain or gzip, must either return
// an array whose size matches its dimensions or throw ladon::Error. read_idx
// takes a path, so the input goes into an in-memory file (memfd) read back
// through /proc/self/fd: no disk traffic.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "ladon/dataset.hpp"
#include "ladon/error.hpp"

namespace {

struct MemoryFile {
    int fd = memfd_create("fuzz_idx", MFD_CLOEXEC);
    std::string path = "/proc/self/fd/" + std::to_string(fd);
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const MemoryFile file;
    if (file.fd < 0 || ftruncate(file.fd, 0) != 0) std::abort();
    for (size_t written = 0; written < size;) {
        const ssize_t count = pwrite(file.fd, data + written, size - written, static_cast<off_t>(written));
        if (count <= 0) std::abort();
        written += static_cast<size_t>(count);
    }
    try {
        const ladon::IdxArray array = ladon::read_idx(file.path);
        uint64_t elements = 1;
        for (const int64_t dim : array.dims) elements *= static_cast<uint64_t>(dim);
        if (elements != array.data.size()) std::abort();
    } catch (const ladon::Error&) {
    }
    return 0;
}
