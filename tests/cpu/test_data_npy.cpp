// NPY files and the NPY dataset: hand-built headers of each version, the
// exact bytes write_npy writes (numpy's own), an error naming the file and
// what was expected for each way a file can be wrong, and datasets whose
// samples, masks and label checks agree with the arrays they were made from.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "engine/data/npy.hpp"
#include "engine/io/atomic_file.hpp"
#include "ladon/dataset.hpp"
#include "ladon/error.hpp"
#include "test_data_files.hpp"

namespace ladon {
namespace {

using data::NpyArray;
using data::NpyDtype;
using data::write_npy;
using test::read_bytes;
using test::TempDir;
using test::write_plain;

template <typename T>
std::vector<uint8_t> raw(const std::vector<T>& values) {
    std::vector<uint8_t> bytes(values.size() * sizeof(T));
    if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    return bytes;
}

// An NPY file by hand: magic, `major`.0, the header length in 2 (1.0) or 4
// bytes, `header` as given (no padding added), then `data`.
std::vector<uint8_t> npy_bytes(const std::string& header, const std::vector<uint8_t>& data, uint8_t major = 1) {
    std::vector<uint8_t> bytes = {0x93, 'N', 'U', 'M', 'P', 'Y', major, 0};
    const size_t length_bytes = major == 1 ? 2 : 4;
    for (size_t i = 0; i < length_bytes; ++i) bytes.push_back(static_cast<uint8_t>(header.size() >> (8 * i)));
    bytes.insert(bytes.end(), header.begin(), header.end());
    bytes.insert(bytes.end(), data.begin(), data.end());
    return bytes;
}

std::string dict(const std::string& descr, const std::string& shape) {
    return "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
}

// Calls `action` and expects a ladon::Error containing `path` (unless
// empty) and `phrase`.
template <typename Action>
void expect_error(Action action, const std::string& path, const std::string& phrase) {
    try {
        action();
        ADD_FAILURE() << "no error; expected one with \"" << phrase << "\"";
    } catch (const Error& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find(path), std::string::npos) << "message does not name " << path << ": " << message;
        EXPECT_NE(message.find(phrase), std::string::npos) << "message lacks \"" << phrase << "\": " << message;
    }
}

void expect_npy_error(const std::string& path, const std::string& phrase) {
    expect_error([&] { NpyArray array(path); }, "NPY file " + path + ": ", phrase);
}

// Writes bytes to a fresh file and expects reading it to fail with `phrase`.
void expect_npy_bytes_error(const std::vector<uint8_t>& bytes, const std::string& phrase) {
    TempDir dir;
    write_plain(dir.file("bad.npy"), bytes);
    expect_npy_error(dir.file("bad.npy"), phrase);
}

std::vector<float> floats(const NpyArray& array) {
    std::vector<float> values(static_cast<size_t>(array.elements()));
    array.copy_to_float(0, array.elements(), values.data());
    return values;
}

// ---------------------------------------------------------------- reading

TEST(Npy, ReadsAVersion1FileOfEachDtype) {
    TempDir dir;
    write_plain(dir.file("f4.npy"), npy_bytes(dict("<f4", "(2, 3)"), raw(std::vector<float>{0, 1.5f, -2, 3, 4, 5})));
    write_plain(dir.file("f8.npy"), npy_bytes(dict("<f8", "(2,)"), raw(std::vector<double>{0.25, -8})));
    write_plain(dir.file("i4.npy"), npy_bytes(dict("<i4", "(3,)"), raw(std::vector<int32_t>{-7, 0, 2147483647})));
    write_plain(dir.file("i8.npy"), npy_bytes(dict("<i8", "(1,)"), raw(std::vector<int64_t>{-(int64_t{1} << 40)})));
    write_plain(dir.file("u1.npy"), npy_bytes(dict("|u1", "(2, 2)"), {0, 1, 128, 255}));
    write_plain(dir.file("b1.npy"), npy_bytes(dict("|b1", "(3,)"), {1, 0, 1}));

    const NpyArray f4(dir.file("f4.npy"));
    EXPECT_EQ(f4.dtype(), NpyDtype::f32);
    EXPECT_EQ(f4.shape(), (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(floats(f4), (std::vector<float>{0, 1.5f, -2, 3, 4, 5}));
    EXPECT_EQ(NpyArray(dir.file("f8.npy")).as_double(0), 0.25);
    EXPECT_EQ(NpyArray(dir.file("f8.npy")).as_double(1), -8.0);
    const NpyArray i4(dir.file("i4.npy"));
    EXPECT_EQ(i4.as_int64(0), -7);
    EXPECT_EQ(i4.as_int64(2), 2147483647);
    EXPECT_EQ(NpyArray(dir.file("i8.npy")).as_int64(0), -(int64_t{1} << 40));
    const NpyArray u1(dir.file("u1.npy"));
    EXPECT_EQ(u1.shape(), (std::vector<int64_t>{2, 2}));
    std::vector<float> scaled(4);
    u1.copy_to_float(0, 4, scaled.data(), 0.5f);
    EXPECT_EQ(scaled, (std::vector<float>{0, 0.5f, 64, 127.5f}));
    EXPECT_EQ(floats(NpyArray(dir.file("b1.npy"))), (std::vector<float>{1, 0, 1}));
}

TEST(Npy, ReadsVersion2And3HeadersWithFourByteLengths) {
    TempDir dir;
    write_plain(dir.file("v2.npy"), npy_bytes(dict("<f4", "(2,)") + "   \n", raw(std::vector<float>{1, 2}), 2));
    write_plain(dir.file("v3.npy"), npy_bytes(dict("<i8", "(1,)") + "\n", raw(std::vector<int64_t>{9}), 3));
    EXPECT_EQ(floats(NpyArray(dir.file("v2.npy"))), (std::vector<float>{1, 2}));
    EXPECT_EQ(NpyArray(dir.file("v3.npy")).as_int64(0), 9);
}

TEST(Npy, AcceptsAnyKeyOrderQuotingAndSpacingNumpyCouldWrite) {
    TempDir dir;
    write_plain(dir.file("a.npy"),
                npy_bytes("{\"shape\":(2,3,),'fortran_order':False,\"descr\":\"<f4\"}", raw(std::vector<float>(6, 1))));
    EXPECT_EQ(NpyArray(dir.file("a.npy")).shape(), (std::vector<int64_t>{2, 3}));
}

TEST(Npy, ReadsScalarsAndEmptyArrays) {
    TempDir dir;
    write_plain(dir.file("scalar.npy"), npy_bytes(dict("<f4", "()"), raw(std::vector<float>{4.5f})));
    write_plain(dir.file("empty.npy"), npy_bytes(dict("<f4", "(0, 28)"), {}));
    const NpyArray scalar(dir.file("scalar.npy"));
    EXPECT_TRUE(scalar.shape().empty());
    EXPECT_EQ(scalar.elements(), 1);
    EXPECT_EQ(scalar.as_double(0), 4.5);
    const NpyArray empty(dir.file("empty.npy"));
    EXPECT_EQ(empty.elements(), 0);
    EXPECT_TRUE(empty.data().empty());
}

TEST(Npy, ReadsUnalignedData) {
    TempDir dir;
    // A 1-byte header: the data starts at byte 11, not a multiple of 4 or 8.
    const std::string header = dict("<f8", "(2,)");
    write_plain(dir.file("odd.npy"), npy_bytes(header + " ", raw(std::vector<double>{1.25, -3.5})));
    const NpyArray array(dir.file("odd.npy"));
    EXPECT_EQ(array.as_double(0), 1.25);
    EXPECT_EQ(array.as_double(1), -3.5);
}

// ---------------------------------------------------------------- writing

TEST(Npy, WritesTheBytesNumpyWrites) {
    TempDir dir;
    const std::vector<float> values = {0, 0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f, 4, 4.5f, 5, 5.5f};
    const std::vector<int64_t> shape = {3, 4};
    write_npy(dir.file("a.npy"), shape, values.data());

    // np.save("a.npy", (np.arange(12, dtype=np.float32) * 0.5).reshape(3, 4))
    // with numpy 1.24: version 1.0, header length 118 (0x76), sorted keys,
    // 21 - len("3") spaces of room for the first dimension to grow, then
    // spaces and a newline up to 128 bytes in all.
    std::string expected_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    expected_header += std::string(118 - expected_header.size() - 1, ' ') + "\n";
    const auto expected = npy_bytes(expected_header, raw(values));
    EXPECT_EQ(read_bytes(dir.file("a.npy")), expected);
    EXPECT_EQ(expected.size(), 128u + 48u);
}

TEST(Npy, AlignsTheDataTo64BytesForEveryShape) {
    for (const auto& shape : std::vector<std::vector<int64_t>>{{}, {7}, {123456789012, 0}, {1, 2, 3, 4, 5, 6, 7, 8}}) {
        const auto header = data::npy_header_bytes(NpyDtype::u8, shape);
        EXPECT_EQ(header.size() % 64, 0u) << data::npy_shape_text(shape);
        EXPECT_EQ(header.back(), std::byte{'\n'});
    }
}

TEST(Npy, RoundTripsEveryDtypeThroughWriteNpy) {
    TempDir dir;
    const std::vector<int64_t> shape = {2, 3};
    const std::vector<double> f8 = {1e-300, 2, 3, 4, 5, -6};
    const std::vector<int32_t> i4 = {1, -2, 3, -4, 5, -6};
    const std::vector<int64_t> i8 = {int64_t{1} << 62, -2, 3, -4, 5, -6};
    const std::vector<uint8_t> u1 = {0, 1, 2, 253, 254, 255};
    write_npy(dir.file("f8.npy"), NpyDtype::f64, shape, f8.data());
    write_npy(dir.file("i4.npy"), NpyDtype::i32, shape, i4.data());
    write_npy(dir.file("i8.npy"), NpyDtype::i64, shape, i8.data());
    write_npy(dir.file("u1.npy"), NpyDtype::u8, shape, u1.data());
    write_npy(dir.file("b1.npy"), NpyDtype::b1, shape, std::vector<uint8_t>{1, 0, 0, 1, 1, 0}.data());
    for (size_t i = 0; i < 6; ++i) {
        const auto index = static_cast<int64_t>(i);
        EXPECT_EQ(NpyArray(dir.file("f8.npy")).as_double(index), f8[i]);
        EXPECT_EQ(NpyArray(dir.file("i4.npy")).as_int64(index), i4[i]);
        EXPECT_EQ(NpyArray(dir.file("i8.npy")).as_int64(index), i8[i]);
        EXPECT_EQ(NpyArray(dir.file("u1.npy")).as_int64(index), u1[i]);
    }
    EXPECT_EQ(NpyArray(dir.file("b1.npy")).dtype(), NpyDtype::b1);
    EXPECT_EQ(NpyArray(dir.file("u1.npy")).shape(), shape);
}

TEST(Npy, WriteFailureNamesThePathAndLeavesNoTemporaryFile) {
    TempDir dir;
    write_plain(dir.file("plain"), {'x'});
    const auto path = dir.file("plain") + "/out.npy";
    const std::vector<float> values = {1};
    const std::vector<int64_t> shape = {1};
    expect_error([&] { write_npy(path, shape, values.data()); }, "NPY file " + path + ": ",
                 "cannot create the temporary file");
    expect_error([&] { write_npy(dir.file("missing") + "/out.npy", shape, values.data()); }, "out.npy",
                 "No such file or directory");
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST(Npy, WriteReplacesAnExistingFile) {
    TempDir dir;
    const std::vector<int64_t> shape = {2};
    write_npy(dir.file("a.npy"), shape, std::vector<float>{1, 2}.data());
    write_npy(dir.file("a.npy"), shape, std::vector<float>{3, 4}.data());
    EXPECT_EQ(floats(NpyArray(dir.file("a.npy"))), (std::vector<float>{3, 4}));
    EXPECT_FALSE(std::filesystem::exists(io::atomic_temp_path(dir.file("a.npy"))));
}

// ---------------------------------------------------------------- reader errors

TEST(NpyErrors, MissingFileAndDirectoryAreErrors) {
    TempDir dir;
    expect_npy_error(dir.file("absent.npy"), "cannot open (No such file or directory)");
    expect_npy_error(dir.path(), "expected a readable regular file");
}

TEST(NpyErrors, BadMagicIsAnError) {
    expect_npy_bytes_error({}, "bad magic \"\" (0 bytes in the file); expected an NPY file starting \"\\x93NUMPY\"");
    expect_npy_bytes_error({'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0}, "bad magic \"PK\\x03\\x04\\x00\\x00\"");
    expect_npy_bytes_error({0x93, 'N', 'U', 'M'}, "(4 bytes in the file)");
    expect_npy_bytes_error({0x93, 'N', 'U', 'M', 'P', 'Y', 1},
                           "truncated preamble: 7 bytes; expected a 2-byte version");
}

TEST(NpyErrors, UnsupportedVersionIsAnError) {
    auto bytes = npy_bytes(dict("<f4", "(1,)"), raw(std::vector<float>{1}));
    bytes[6] = 4;
    expect_npy_bytes_error(bytes, "unsupported NPY version 4.0; expected 1.0, 2.0 or 3.0");
    bytes[6] = 1;
    bytes[7] = 1;
    expect_npy_bytes_error(bytes, "unsupported NPY version 1.1");
}

TEST(NpyErrors, TruncatedPreambleAndHeaderAreErrors) {
    expect_npy_bytes_error({0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 10, 0}, "truncated preamble: 10 bytes; expected 12");
    auto bytes = npy_bytes(dict("<f4", "(1,)"), {});
    bytes.resize(bytes.size() - 5);
    expect_npy_bytes_error(bytes, "header length 57 runs past the end of the file (52 bytes follow the preamble)");
}

TEST(NpyErrors, MalformedHeaderDictIsAnError) {
    const std::vector<uint8_t> one_float = raw(std::vector<float>{1});
    expect_npy_bytes_error(npy_bytes("'descr': '<f4'}", one_float),
                           "malformed header: at character 0 of the dict, "
                           "expected '{' to open the dict, found '''");
    expect_npy_bytes_error(npy_bytes("{'descr' '<f4'}", one_float), "expected ':' after a key, found '''");
    expect_npy_bytes_error(npy_bytes("{descr: '<f4'}", one_float), "expected a quoted key or '}', found 'd'");
    expect_npy_bytes_error(npy_bytes("{'descr': '<f4", one_float), "expected the closing quote of a string");
    expect_npy_bytes_error(npy_bytes("{'descr': '<f4' 'shape': (1,)}", one_float), "expected ',' or '}' after a value");
    expect_npy_bytes_error(npy_bytes(dict("<f4", "(1,)") + " x", one_float), "expected only spaces after the dict");
    expect_npy_bytes_error(npy_bytes("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (1,)}", one_float),
                           "structured dtypes, which are not supported");
    expect_npy_bytes_error(npy_bytes("{'descr': None}", one_float),
                           "expected a string, True, False or a tuple, found 'N'");
    // Every message shows what a header should look like.
    expect_npy_bytes_error(npy_bytes("{", one_float),
                           "expected a header like {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }");
}

TEST(NpyErrors, WrongKeysAreAnError) {
    const std::vector<uint8_t> one_float = raw(std::vector<float>{1});
    expect_npy_bytes_error(npy_bytes("{'descr': '<f4', 'shape': (1,)}", one_float),
                           "header has no 'fortran_order'; expected 'descr', 'fortran_order' and 'shape'");
    expect_npy_bytes_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", one_float),
                           "expected a string, True, False or a tuple, found '1'");
    expect_npy_bytes_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'kind': 'x'}", one_float),
                           "header has an unknown key 'kind'; expected only 'descr', 'fortran_order' and 'shape'");
    expect_npy_bytes_error(
        npy_bytes("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", one_float),
        "header has the key 'descr' twice");
}

TEST(NpyErrors, ValuesOfTheWrongKindAreAnError) {
    const std::vector<uint8_t> one_float = raw(std::vector<float>{1});
    expect_npy_bytes_error(npy_bytes("{'descr': (1,), 'fortran_order': False, 'shape': (1,)}", one_float),
                           "header's 'descr' is not a string");
    expect_npy_bytes_error(npy_bytes("{'descr': '<f4', 'fortran_order': 'no', 'shape': (1,)}", one_float),
                           "header's 'fortran_order' is not True or False");
    expect_npy_bytes_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': '1'}", one_float),
                           "header's 'shape' is not a tuple");
    expect_npy_bytes_error(npy_bytes(dict("<f4", "(1)"), one_float),
                           "expected ',' after the only dimension: (n,) is a tuple, (n) is not");
    expect_npy_bytes_error(npy_bytes(dict("<f4", "(-1,)"), one_float), "expected a non-negative integer dimension");
    expect_npy_bytes_error(npy_bytes(dict("<f4", "(99999999999999999999,)"), one_float),
                           "expected a dimension below 2^63");
    expect_npy_bytes_error(npy_bytes(dict("<f4", "(1 2)"), one_float), "expected ',' or ')' in the shape tuple");
}

TEST(NpyErrors, FortranOrderIsAnError) {
    expect_npy_bytes_error(
        npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (1,)}", raw(std::vector<float>{1})),
        "Fortran-order (column-major) data is not supported; expected fortran_order False");
}

TEST(NpyErrors, UnsupportedDtypeIsAnErrorListingTheSupportedOnes) {
    const std::string supported = "expected one of '|u1', '|b1', '<i4', '<i8', '<f4', '<f8'";
    expect_npy_bytes_error(npy_bytes(dict(">f4", "(1,)"), {0, 0, 0, 0}), "unsupported dtype '>f4'; " + supported);
    expect_npy_bytes_error(npy_bytes(dict("<u2", "(1,)"), {0, 0}), "unsupported dtype '<u2'");
    expect_npy_bytes_error(npy_bytes(dict("|O", "(1,)"), {0, 0, 0, 0, 0, 0, 0, 0}), "unsupported dtype '|O'");
}

TEST(NpyErrors, DataShorterOrLongerThanTheShapeIsAnError) {
    expect_npy_bytes_error(npy_bytes(dict("<f4", "(2, 3)"), std::vector<uint8_t>(20)),
                           "truncated data: shape (2, 3) of <f4 needs 24 bytes after the header, found 20");
    expect_npy_bytes_error(npy_bytes(dict("|u1", "(4,)"), std::vector<uint8_t>(5)),
                           "trailing bytes: shape (4,) of |u1 needs exactly 4 bytes after the header, found 5");
    expect_npy_bytes_error(npy_bytes(dict("<f8", "(4294967296, 4294967296)"), {}),
                           "shape (4294967296, 4294967296) of <f8 is too large");
}

TEST(NpyErrors, AFileCutShortIsAnError) {
    TempDir dir;
    const std::vector<int64_t> shape = {100};
    write_npy(dir.file("a.npy"), shape, std::vector<float>(100, 1).data());
    auto bytes = read_bytes(dir.file("a.npy"));
    bytes.resize(bytes.size() - 1);
    write_plain(dir.file("a.npy"), bytes);
    expect_npy_error(dir.file("a.npy"),
                     "truncated data: shape (100,) of <f4 needs 400 bytes after the header, found "
                     "399");
}

// ---------------------------------------------------------------- the dataset

// Files for a small dataset of N samples, 2 channels of 3 x 2 pixels.
struct DatasetFiles {
    static constexpr int64_t kSamples = 5;
    TempDir dir;
    std::vector<uint8_t> pixels;

    DatasetFiles() {
        for (int64_t i = 0; i < kSamples * 2 * 3 * 2; ++i) pixels.push_back(static_cast<uint8_t>(i * 7 % 256));
        write(dir.file("x.npy"), NpyDtype::u8, {kSamples, 2, 3, 2}, pixels.data());
        write(dir.file("digit.npy"), NpyDtype::i64, {kSamples}, std::vector<int64_t>{3, 0, 9, -1, 4}.data());
        write(dir.file("digit_mask.npy"), NpyDtype::b1, {kSamples}, std::vector<uint8_t>{1, 1, 1, 0, 1}.data());
        write(dir.file("tags.npy"), NpyDtype::u8, {kSamples, 2},
              std::vector<uint8_t>{0, 1, 1, 1, 0, 0, 1, 0, 0, 1}.data());
        write(dir.file("box.npy"), NpyDtype::f64, {kSamples, 4},
              std::vector<double>{.1, .2, .3, .4, 1, 2, 3, 4, 0, 0, 0, 0, -1, -2, -3, -4, 5, 6, 7, 8}.data());
    }

    static void write(const std::string& path, NpyDtype dtype, std::vector<int64_t> shape, const void* values) {
        data::write_npy(path, dtype, shape, values);
    }

    NpyDatasetOptions options() const {
        return {dir.file("x.npy"),
                {{"digit", TaskKind::classes, dir.file("digit.npy"), dir.file("digit_mask.npy"), 10},
                 {"tags", TaskKind::binary, dir.file("tags.npy"), "", 0},
                 {"box", TaskKind::regression, dir.file("box.npy"), "", 0}}};
    }
};

struct Sample {
    std::vector<float> image;
    float digit = -1;
    std::array<float, 2> tags{};
    std::array<float, 4> box{};
    std::array<float, 3> present{};
    bool operator==(const Sample&) const = default;
};

Sample load(const Dataset& dataset, int64_t index) {
    Sample sample;
    sample.image.resize(static_cast<size_t>(dataset.sample_shape().elements()));
    const std::array<float*, 3> targets = {&sample.digit, sample.tags.data(), sample.box.data()};
    dataset.load(index, sample.image.data(), targets, sample.present.data());
    return sample;
}

TEST(NpyDataset, LoadsImagesScaledAndTargetsPerTask) {
    const DatasetFiles files;
    const auto dataset = make_npy_dataset(files.options());
    EXPECT_EQ(dataset->size(), DatasetFiles::kSamples);
    EXPECT_EQ(dataset->sample_shape().channels, 2);
    EXPECT_EQ(dataset->sample_shape().height, 3);
    EXPECT_EQ(dataset->sample_shape().width, 2);
    ASSERT_EQ(dataset->tasks().size(), 3u);
    EXPECT_EQ(dataset->tasks()[0].name, "digit");
    EXPECT_EQ(dataset->tasks()[0].width, 10);
    EXPECT_EQ(dataset->tasks()[1].kind, TaskKind::binary);
    EXPECT_EQ(dataset->tasks()[1].width, 2);
    EXPECT_EQ(dataset->tasks()[2].width, 4);

    const Sample second = load(*dataset, 1);
    for (size_t p = 0; p < 12; ++p) EXPECT_FLOAT_EQ(second.image[p], files.pixels[12 + p] / 255.0f) << p;
    EXPECT_EQ(second.digit, 0.0f);
    EXPECT_EQ(second.tags, (std::array<float, 2>{1, 1}));
    EXPECT_EQ(second.box, (std::array<float, 4>{1, 2, 3, 4}));
    EXPECT_EQ(second.present, (std::array<float, 3>{1, 1, 1}));
    EXPECT_EQ(load(*dataset, 2).digit, 9.0f);
}

TEST(NpyDataset, MaskedSampleHasNoLabelAndItsValueIsNotChecked) {
    const DatasetFiles files;
    const auto dataset = make_npy_dataset(files.options());  // row 3 holds class -1 under mask 0
    const Sample masked = load(*dataset, 3);
    EXPECT_EQ(masked.present, (std::array<float, 3>{0, 1, 1}));
    EXPECT_EQ(masked.digit, 0.0f);
    EXPECT_EQ(masked.box, (std::array<float, 4>{-1, -2, -3, -4}));
}

TEST(NpyDataset, FloatInputsWithoutAChannelAxisAreOneChannel) {
    TempDir dir;
    const std::vector<float> pixels = {0.5f, -1, 2, 3, 4, 5, 6, 7};
    DatasetFiles::write(dir.file("x.npy"), NpyDtype::f32, {2, 2, 2}, pixels.data());
    const auto dataset = make_npy_dataset({dir.file("x.npy"), {}});
    EXPECT_EQ(dataset->sample_shape().channels, 1);
    EXPECT_EQ(dataset->sample_shape().elements(), 4);
    EXPECT_TRUE(dataset->tasks().empty());
    std::vector<float> image(4);
    dataset->load(1, image.data(), {}, nullptr);
    EXPECT_EQ(image, (std::vector<float>{4, 5, 6, 7}));
    EXPECT_EQ(dataset->name(), "npy:" + dir.file("x.npy"));
}

TEST(NpyDataset, ClassOutOfRangeNamesTheFileRowAndValue) {
    DatasetFiles files;
    auto options = files.options();
    options.tasks[0].mask_path.clear();  // row 3's -1 is now a label
    expect_error([&] { make_npy_dataset(options); }, "NPY file " + files.dir.file("digit.npy") + ": ",
                 "row 3 has class -1, expected 0..9 (task 'digit' has 10 classes)");
    options.tasks[0].num_classes = 2;
    options.tasks[0].mask_path = files.dir.file("digit_mask.npy");
    expect_error([&] { make_npy_dataset(options); }, files.dir.file("digit.npy"), "row 0 has class 3, expected 0..1");
}

TEST(NpyDataset, LabelsLargerThanTheEagerLimitAreCheckedAsSamplesLoad) {
    TempDir dir;
    constexpr int64_t kRows = 4;
    constexpr int64_t kWidth = int64_t{3} << 20;  // 4 x 3 Mi doubles: 96 MiB, over the 64 MiB eager limit
    DatasetFiles::write(dir.file("x.npy"), NpyDtype::u8, {kRows, 1, 1, 1}, std::vector<uint8_t>(kRows).data());
    // The header, then the data as a hole of zeros (valid 0 labels; no disk
    // used) but for one 7 at row 2, column 5.
    const auto header = data::npy_header_bytes(NpyDtype::f64, std::vector<int64_t>{kRows, kWidth});
    std::vector<uint8_t> bytes(header.size());
    std::memcpy(bytes.data(), header.data(), header.size());
    write_plain(dir.file("tags.npy"), bytes);
    std::filesystem::resize_file(dir.file("tags.npy"), header.size() + kRows * kWidth * sizeof(double));
    {
        std::fstream file(dir.file("tags.npy"), std::ios::in | std::ios::out | std::ios::binary);
        file.seekp(static_cast<std::streamoff>(header.size() + (2 * kWidth + 5) * sizeof(double)));
        const double seven = 7;
        file.write(reinterpret_cast<const char*>(&seven), sizeof(seven));
        ASSERT_TRUE(file.good());
    }

    const auto dataset =
        make_npy_dataset({dir.file("x.npy"), {{"tags", TaskKind::binary, dir.file("tags.npy"), "", 0}}});
    std::vector<float> image(1);
    std::vector<float> tags(static_cast<size_t>(kWidth));
    std::array<float*, 1> targets = {tags.data()};
    float present = 0;
    dataset->load(1, image.data(), targets, &present);
    EXPECT_EQ(present, 1.0f);
    expect_error([&] { dataset->load(2, image.data(), targets, &present); }, dir.file("tags.npy"),
                 "row 2, column 5 has 7, expected 0 or 1 (binary task 'tags')");
}

TEST(NpyDataset, RowCountMismatchNamesBothFiles) {
    DatasetFiles files;
    DatasetFiles::write(files.dir.file("box.npy"), NpyDtype::f32, {4, 4}, std::vector<float>(16).data());
    const auto message_has = "task 'box' labels " + files.dir.file("box.npy") + " has 4 rows but inputs " +
                             files.dir.file("x.npy") + " has 5; expected one row per input";
    expect_error([&] { make_npy_dataset(files.options()); }, "NPY dataset: ", message_has);

    DatasetFiles::write(files.dir.file("box.npy"), NpyDtype::f32, {5, 4}, std::vector<float>(20).data());
    DatasetFiles::write(files.dir.file("digit_mask.npy"), NpyDtype::u8, {6}, std::vector<uint8_t>(6).data());
    expect_error([&] { make_npy_dataset(files.options()); }, files.dir.file("digit_mask.npy"),
                 "task 'digit' mask " + files.dir.file("digit_mask.npy") + " has 6 rows");
}

TEST(NpyDataset, BadValuesNameTheFileRowAndValue) {
    DatasetFiles files;
    DatasetFiles::write(files.dir.file("tags.npy"), NpyDtype::f32, {5}, std::vector<float>{0, 1, 0.5f, 1, 0}.data());
    expect_error([&] { make_npy_dataset(files.options()); }, files.dir.file("tags.npy"),
                 "row 2 has 0.5, expected 0 or 1 (binary task 'tags')");

    DatasetFiles::write(files.dir.file("tags.npy"), NpyDtype::u8, {5}, std::vector<uint8_t>(5).data());
    const double nan = std::numeric_limits<double>::quiet_NaN();
    DatasetFiles::write(files.dir.file("box.npy"), NpyDtype::f64, {5, 2},
                        std::vector<double>{0, 0, 0, 0, 0, 0, 0, nan, 0, 0}.data());
    expect_error([&] { make_npy_dataset(files.options()); }, files.dir.file("box.npy"),
                 "row 3, column 1 is nan, expected a finite value (regression task 'box'");

    DatasetFiles::write(files.dir.file("box.npy"), NpyDtype::f32, {5}, std::vector<float>(5).data());
    DatasetFiles::write(files.dir.file("digit_mask.npy"), NpyDtype::i32, {5},
                        std::vector<int32_t>{1, 1, 2, 1, 1}.data());
    expect_error([&] { make_npy_dataset(files.options()); }, files.dir.file("digit_mask.npy"),
                 "row 2 has mask value 2, expected 0 or 1 (task 'digit')");
}

TEST(NpyDataset, UnsupportedDtypesAndShapesAreErrors) {
    DatasetFiles files;
    DatasetFiles::write(files.dir.file("digit.npy"), NpyDtype::f32, {5}, std::vector<float>(5).data());
    expect_error([&] { make_npy_dataset(files.options()); }, files.dir.file("digit.npy"),
                 "dtype '<f4' is not supported for labels of classes task 'digit'; expected '|u1', '<i4', '<i8'");
    DatasetFiles::write(files.dir.file("digit.npy"), NpyDtype::u8, {5, 2}, std::vector<uint8_t>(10).data());
    expect_error([&] { make_npy_dataset(files.options()); }, files.dir.file("digit.npy"),
                 "shape (5, 2) does not fit the labels of classes task 'digit'; expected (N,) or (N, 1)");
    DatasetFiles::write(files.dir.file("digit.npy"), NpyDtype::u8, {5, 1}, std::vector<uint8_t>(5).data());
    EXPECT_NO_THROW(make_npy_dataset(files.options()));

    DatasetFiles::write(files.dir.file("box.npy"), NpyDtype::i64, {5, 4}, std::vector<int64_t>(20).data());
    expect_error([&] { make_npy_dataset(files.options()); }, files.dir.file("box.npy"),
                 "dtype '<i8' is not supported for labels of regression task 'box'; expected '<f4', '<f8'");

    DatasetFiles::write(files.dir.file("x.npy"), NpyDtype::f64, {5, 1, 2, 2}, std::vector<double>(20).data());
    expect_error([&] { make_npy_dataset(files.options()); }, files.dir.file("x.npy"),
                 "dtype '<f8' is not supported for inputs; expected '|u1', '<f4'");
    DatasetFiles::write(files.dir.file("x.npy"), NpyDtype::u8, {5, 4}, std::vector<uint8_t>(20).data());
    expect_error([&] { make_npy_dataset(files.options()); }, files.dir.file("x.npy"),
                 "inputs have shape (5, 4); expected (N, C, H, W) or (N, H, W)");
    DatasetFiles::write(files.dir.file("x.npy"), NpyDtype::u8, {0, 1, 2, 2}, nullptr);
    expect_error([&] { make_npy_dataset(files.options()); }, files.dir.file("x.npy"),
                 "inputs have shape (0, 1, 2, 2); expected (N, C, H, W) or (N, H, W) with every dimension at least 1");
}

TEST(NpyDataset, BadTaskOptionsAreErrors) {
    const DatasetFiles files;
    auto options = files.options();
    options.tasks[0].num_classes = 0;
    expect_error([&] { make_npy_dataset(options); }, "NPY dataset: task 'digit'",
                 "has num_classes 0; expected at least 2");
    options = files.options();
    options.tasks[1].num_classes = 2;
    expect_error([&] { make_npy_dataset(options); }, "NPY dataset: task 'tags'",
                 "is binary but has num_classes 2; expected num_classes only on classes tasks");
    options = files.options();
    options.tasks[2].name = "digit";
    expect_error([&] { make_npy_dataset(options); }, "NPY dataset: task 'digit'", "given twice");
    options = files.options();
    options.tasks[2].path.clear();
    expect_error([&] { make_npy_dataset(options); }, "NPY dataset: task 'box'", "has no labels file");
    options = files.options();
    options.tasks[1].path = files.dir.file("absent.npy");
    expect_error([&] { make_npy_dataset(options); }, files.dir.file("absent.npy"), "cannot open");
}

TEST(NpyDataset, IndexOutOfRangeIsAnError) {
    const DatasetFiles files;
    const auto dataset = make_npy_dataset(files.options());
    expect_error([&] { load(*dataset, 5); }, files.dir.file("x.npy"),
                 "sample index 5 out of range; expected 0 <= "
                 "index < 5");
}

TEST(NpyDataset, ConcurrentLoadsMatchSequentialOnes) {
    const DatasetFiles files;
    const auto dataset = make_npy_dataset(files.options());
    std::vector<Sample> expected;
    for (int64_t i = 0; i < DatasetFiles::kSamples; ++i) expected.push_back(load(*dataset, i));

    std::vector<int> mismatches(4, 0);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < mismatches.size(); ++t) {
        threads.emplace_back([&, t] {
            for (int round = 0; round < 500; ++round) {
                const auto index = static_cast<int64_t>((round + t) % DatasetFiles::kSamples);
                if (!(load(*dataset, index) == expected[static_cast<size_t>(index)])) ++mismatches[t];
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace ladon
