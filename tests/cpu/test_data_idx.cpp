// read_idx: the IDX format, plain or gzip, and an error message that names the
// file and what was expected for each way a file can be wrong.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ladon/dataset.hpp"
#include "ladon/error.hpp"
#include "test_data_files.hpp"

namespace ladon {
namespace {

using test::idx_bytes;
using test::TempDir;
using test::write_gzip;
using test::write_plain;

std::vector<uint8_t> counting_bytes(size_t count) {
    std::vector<uint8_t> bytes(count);
    for (size_t i = 0; i < count; ++i) bytes[i] = static_cast<uint8_t>(i * 7 + 3);
    return bytes;
}

// read_idx(path) must throw a ladon::Error naming the file and containing
// `phrase` (what is wrong or what was expected).
void expect_idx_error(const std::string& path, const std::string& phrase) {
    try {
        read_idx(path);
        ADD_FAILURE() << "read_idx(" << path << ") did not throw";
    } catch (const Error& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find(path), std::string::npos) << "message does not name the file: " << message;
        EXPECT_NE(message.find(phrase), std::string::npos) << "message lacks \"" << phrase << "\": " << message;
    }
}

TEST(ReadIdx, ReadsAPlainFile) {
    TempDir dir;
    const auto data = counting_bytes(6);
    write_plain(dir.file("plain.idx"), idx_bytes({2, 3}, data));

    const IdxArray array = read_idx(dir.file("plain.idx"));
    EXPECT_EQ(array.dims, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(array.data, data);
}

TEST(ReadIdx, ReadsAGzipFileByContentWhateverItsName) {
    TempDir dir;
    const auto data = counting_bytes(size_t{3} * 4 * 5);
    write_gzip(dir.file("images.idx"), idx_bytes({3, 4, 5}, data));

    const IdxArray array = read_idx(dir.file("images.idx"));
    EXPECT_EQ(array.dims, (std::vector<int64_t>{3, 4, 5}));
    EXPECT_EQ(array.data, data);
}

TEST(ReadIdx, ReadsDataLargerThanOneReadChunk) {
    TempDir dir;
    const auto data = counting_bytes(size_t{3} * 1000 * 1000);
    write_gzip(dir.file("large.gz"), idx_bytes({3000, 1000}, data));

    const IdxArray array = read_idx(dir.file("large.gz"));
    EXPECT_EQ(array.dims, (std::vector<int64_t>{3000, 1000}));
    EXPECT_EQ(array.data, data);
}

TEST(ReadIdx, ReadsAnEmptyArray) {
    TempDir dir;
    write_plain(dir.file("empty.idx"), idx_bytes({0, 28, 28}, {}));

    const IdxArray array = read_idx(dir.file("empty.idx"));
    EXPECT_EQ(array.dims, (std::vector<int64_t>{0, 28, 28}));
    EXPECT_TRUE(array.data.empty());
}

TEST(ReadIdx, MissingFileIsAnError) {
    TempDir dir;
    expect_idx_error(dir.file("absent.gz"), "cannot open");
    expect_idx_error(dir.file("absent.gz"), "expected a readable IDX file");
}

TEST(ReadIdx, DirectoryIsAnError) {
    TempDir dir;
    expect_idx_error(dir.path(), "expected a readable IDX file");
}

TEST(ReadIdx, TruncatedMagicIsAnError) {
    TempDir dir;
    write_plain(dir.file("short.idx"), {0, 0});
    expect_idx_error(dir.file("short.idx"), "expected a 4-byte magic number, found 2 bytes");
}

TEST(ReadIdx, TruncatedDimensionsAreAnError) {
    TempDir dir;
    auto bytes = idx_bytes({60000, 28, 28}, {});
    bytes.resize(bytes.size() - 3);
    write_gzip(dir.file("short-dims.gz"), bytes);
    expect_idx_error(dir.file("short-dims.gz"), "expected 3 dimensions (12 bytes), found 9 bytes");
}

TEST(ReadIdx, TruncatedPlainDataIsAnError) {
    TempDir dir;
    write_plain(dir.file("short-data.idx"), idx_bytes({2, 3}, counting_bytes(4)));
    expect_idx_error(dir.file("short-data.idx"), "expected 6 bytes of data, found 4");
}

TEST(ReadIdx, TruncatedGzipDataIsAnError) {
    TempDir dir;
    write_gzip(dir.file("short-data.gz"), idx_bytes({10, 10}, counting_bytes(99)));
    expect_idx_error(dir.file("short-data.gz"), "expected 100 bytes of data, found 99");
}

TEST(ReadIdx, HugeClaimOverShortDataFailsWithoutAllocatingTheClaim) {
    TempDir dir;
    // 2^33 bytes claimed, 10 present: must report truncation, not exhaust memory.
    write_plain(dir.file("claim.idx"), idx_bytes({1u << 31, 4}, counting_bytes(10)));
    expect_idx_error(dir.file("claim.idx"), "expected 8589934592 bytes of data, found 10");
}

TEST(ReadIdx, TrailingBytesAreAnError) {
    TempDir dir;
    write_plain(dir.file("long.idx"), idx_bytes({2, 2}, counting_bytes(5)));
    expect_idx_error(dir.file("long.idx"), "expected exactly 4 bytes of data");
}

TEST(ReadIdx, BadMagicIsAnError) {
    TempDir dir;
    write_plain(dir.file("text.idx"), {'h', 'e', 'l', 'l', 'o', '\n'});
    expect_idx_error(dir.file("text.idx"), "bad magic 0x6865");
    expect_idx_error(dir.file("text.idx"), "expected an IDX file starting with two zero bytes");
}

TEST(ReadIdx, NonByteElementTypeIsAnError) {
    TempDir dir;
    write_gzip(dir.file("floats.gz"), idx_bytes({2}, counting_bytes(8), 0x0D));
    expect_idx_error(dir.file("floats.gz"), "unsupported element type 0x0d: expected 0x08 (unsigned byte)");
}

TEST(ReadIdx, ZeroRankIsAnError) {
    TempDir dir;
    write_plain(dir.file("scalar.idx"), idx_bytes({}, counting_bytes(1)));
    expect_idx_error(dir.file("scalar.idx"), "zero dimensions in the header: expected at least 1");
}

TEST(ReadIdx, AbsurdDimensionsAreAnError) {
    TempDir dir;
    write_plain(dir.file("absurd.idx"), idx_bytes({0xffffffffu, 0xffffffffu, 0xffffffffu}, {}));
    expect_idx_error(dir.file("absurd.idx"), "dimensions too large");
    expect_idx_error(dir.file("absurd.idx"), "expected at most 17179869184 bytes");
}

TEST(ReadIdx, CorruptGzipStreamIsAnError) {
    TempDir dir;
    write_gzip(dir.file("good.gz"), idx_bytes({50, 20}, counting_bytes(1000)));
    auto bytes = test::read_bytes(dir.file("good.gz"));
    ASSERT_GT(bytes.size(), 30u);
    // Past the 10-byte gzip header: damage the deflate stream itself.
    for (size_t i = 12; i < 20; ++i) bytes[i] ^= 0xff;
    write_plain(dir.file("corrupt.gz"), bytes);
    expect_idx_error(dir.file("corrupt.gz"), "expected a valid gzip stream");
}

TEST(ReadIdx, CutGzipStreamIsAnError) {
    TempDir dir;
    write_gzip(dir.file("good.gz"), idx_bytes({50, 20}, counting_bytes(1000)));
    auto bytes = test::read_bytes(dir.file("good.gz"));
    bytes.resize(bytes.size() - 6);  // loses the CRC-32 and part of the length
    write_plain(dir.file("cut.gz"), bytes);
    expect_idx_error(dir.file("cut.gz"), "corrupt or truncated gzip stream");
}

}  // namespace
}  // namespace ladon
