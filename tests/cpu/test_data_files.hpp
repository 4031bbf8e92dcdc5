#pragma once
// Helpers for the dataset tests: a temporary folder that cleans up after
// itself, and writers for small IDX files, plain or gzip-compressed.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace ladon::test {

class TempDir {
public:
    TempDir() {
        std::random_device entropy;
        for (;;) {
            const auto name = "ladon-test-" + std::to_string(entropy()) + "-" + std::to_string(entropy());
            path_ = std::filesystem::temp_directory_path() / name;
            if (std::filesystem::create_directory(path_)) break;
        }
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    std::string file(const std::string& name) const { return (path_ / name).string(); }
    std::string path() const { return path_.string(); }

private:
    std::filesystem::path path_;
};

// The bytes of an IDX file: two zero bytes, the type, the rank, big-endian
// dims, then `data` as given (so tests can write files that disagree with
// their header).
inline std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data,
                                      uint8_t type = 0x08) {
    std::vector<uint8_t> bytes = {0, 0, type, static_cast<uint8_t>(dims.size())};
    for (const uint32_t dim : dims) {
        for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(dim >> shift));
    }
    bytes.insert(bytes.end(), data.begin(), data.end());
    return bytes;
}

inline void write_plain(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes) {
    gzFile file = gzopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr) << "cannot open " << path;
    const int written = bytes.empty() ? 0 : gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
    ASSERT_EQ(gzclose(file), Z_OK);
    ASSERT_EQ(written, static_cast<int>(bytes.size()));
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace ladon::test
