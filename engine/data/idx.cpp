// IDX reader (the MNIST family's format). zlib's gz* interface reads gzip and
// plain files alike: it looks for the gzip magic bytes (1f 8b) and otherwise
// passes the bytes through unchanged.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "ladon/dataset.hpp"
#include "ladon/error.hpp"

namespace ladon {
namespace {

constexpr uint8_t kUnsignedByteType = 0x08;
// Larger than any dataset this engine reads whole into memory; a header that
// claims more is corrupt, and the cap keeps the dims product from overflowing.
constexpr uint64_t kMaxDataBytes = uint64_t{1} << 34;
// Data is read in chunks so that a header claiming gigabytes over a truncated
// file fails at the file's real size instead of allocating the claim up front.
constexpr size_t kReadChunkBytes = size_t{1} << 20;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw Error("IDX file " + path + ": " + what);
}

gzFile open_gz(const std::string& path) {
    errno = 0;  // gzopen leaves errno at 0 when it fails for want of memory
    return gzopen(path.c_str(), "rb");
}

// One open gz stream; every read is checked for stream errors.
class GzReader {
public:
    explicit GzReader(const std::string& path) : path_(path), file_(open_gz(path), &gzclose) {
        if (!file_) {
            const int error = errno;
            fail(path, "cannot open (" + (error != 0 ? std::generic_category().message(error) : "out of memory") +
                           "); expected a readable IDX file, plain or gzip-compressed");
        }
        gzbuffer(file_.get(), 1 << 18);
    }

    // Reads up to `bytes` bytes; returns how many were read (fewer only at the
    // end of the data).
    size_t read(uint8_t* destination, size_t bytes) {
        size_t total = 0;
        while (total < bytes) {
            const auto request = static_cast<unsigned>(std::min(bytes - total, kReadChunkBytes));
            const int got = gzread(file_.get(), destination + total, request);
            check_stream();
            if (got <= 0) break;
            total += static_cast<size_t>(got);
        }
        return total;
    }

    bool is_gzip() const { return gzdirect(file_.get()) == 0; }

private:
    void check_stream() {
        int code = Z_OK;
        const char* message = gzerror(file_.get(), &code);
        if (code == Z_OK) return;
        if (code == Z_ERRNO) {
            fail(path_, "read failed (" + std::generic_category().message(errno) + "); expected a readable IDX file");
        }
        // zlib's message repeats the path ("path: what"); keep only the what.
        // Z_BUF_ERROR is its "unexpected end of file" inside a gzip member.
        std::string what = message;
        if (what.starts_with(path_ + ": ")) what.erase(0, path_.size() + 2);
        fail(path_,
             "corrupt or truncated gzip stream (" + what + "); expected a valid gzip stream or a plain IDX file");
    }

    std::string path_;
    std::unique_ptr<gzFile_s, decltype(&gzclose)> file_;
};

uint32_t big_endian_u32(const uint8_t* bytes) {
    return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) | uint32_t{bytes[3]};
}

std::string hex_byte(uint8_t value) {
    constexpr std::string_view kDigits = "0123456789abcdef";
    return std::string("0x") + kDigits[value >> 4] + kDigits[value & 0xf];
}

}  // namespace

IdxArray read_idx(const std::string& path) {
    GzReader reader(path);

    std::array<uint8_t, 4> magic{};
    const size_t magic_read = reader.read(magic.data(), magic.size());
    if (magic_read < magic.size()) {
        fail(path, "truncated header: expected a 4-byte magic number, found " + std::to_string(magic_read) + " bytes");
    }
    if (magic[0] != 0 || magic[1] != 0) {
        fail(path, "bad magic " + hex_byte(magic[0]) + hex_byte(magic[1]).substr(2) +
                       ": expected an IDX file starting with two zero bytes" +
                       (reader.is_gzip() ? "" : " (the file is not gzip-compressed either)"));
    }
    if (magic[2] != kUnsignedByteType) {
        fail(path, "unsupported element type " + hex_byte(magic[2]) + ": expected 0x08 (unsigned byte)");
    }
    const size_t rank = magic[3];
    if (rank == 0) fail(path, "zero dimensions in the header: expected at least 1");

    std::array<uint8_t, size_t{4} * 255> dim_bytes{};  // the rank is one byte
    const size_t dims_bytes = 4 * rank;
    const size_t dims_read = reader.read(dim_bytes.data(), dims_bytes);
    if (dims_read < dims_bytes) {
        fail(path, "truncated header: expected " + std::to_string(rank) + " dimensions (" + std::to_string(dims_bytes) +
                       " bytes), found " + std::to_string(dims_read) + " bytes");
    }

    IdxArray array;
    uint64_t expected_bytes = 1;
    for (size_t d = 0; d < rank; ++d) {
        const uint32_t dim = big_endian_u32(dim_bytes.data() + 4 * d);
        if (dim != 0 && expected_bytes > kMaxDataBytes / dim) {
            fail(path, "dimensions too large (dimension " + std::to_string(d) + " is " + std::to_string(dim) +
                           "): expected at most " + std::to_string(kMaxDataBytes) + " bytes of data in total");
        }
        expected_bytes *= dim;
        array.dims.push_back(dim);
    }

    // Grows chunk by chunk (see kReadChunkBytes); the final size is exact.
    size_t found = 0;
    while (found < expected_bytes) {
        const size_t chunk = static_cast<size_t>(std::min<uint64_t>(expected_bytes - found, kReadChunkBytes));
        array.data.resize(found + chunk);
        const size_t got = reader.read(array.data.data() + found, chunk);
        found += got;
        if (got < chunk) break;
    }
    if (found < expected_bytes) {
        fail(path, "truncated data: expected " + std::to_string(expected_bytes) + " bytes of data, found " +
                       std::to_string(found));
    }
    uint8_t extra = 0;
    if (reader.read(&extra, 1) != 0) {
        fail(path, "trailing bytes after the data: expected exactly " + std::to_string(expected_bytes) +
                       " bytes of data as the header's dimensions say");
    }
    return array;
}

}  // namespace ladon
