// safetensors files: the exact byte layout we write, round trips, the atomic
// writer's all-or-nothing promise, and an error naming the file and what was
// expected for each way a file can be wrong.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/io/atomic_file.hpp"
#include "engine/io/safetensors.hpp"
#include "ladon/error.hpp"
#include "test_data_files.hpp"

namespace ladon::io {
namespace {

using test::read_bytes;
using test::TempDir;
using test::write_plain;

// A file's bytes from a header text and a data buffer, with the 8-byte length
// as given (so tests can write lengths that lie).
std::vector<uint8_t> file_bytes(const std::string& header, const std::vector<uint8_t>& buffer, uint64_t length) {
    std::vector<uint8_t> bytes;
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<uint8_t>(length >> (8 * i)));
    bytes.insert(bytes.end(), header.begin(), header.end());
    bytes.insert(bytes.end(), buffer.begin(), buffer.end());
    return bytes;
}
std::vector<uint8_t> file_bytes(const std::string& header, const std::vector<uint8_t>& buffer = {}) {
    return file_bytes(header, buffer, header.size());
}

uint64_t little_endian_u64(const std::vector<uint8_t>& bytes) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[static_cast<size_t>(i)];
    return value;
}

template <typename T>
std::vector<uint8_t> raw(const std::vector<T>& values) {
    std::vector<uint8_t> bytes(values.size() * sizeof(T));
    if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    return bytes;
}

// read_safetensors(path) must throw a ladon::Error naming the file and
// containing `phrase`.
void expect_read_error(const std::string& path, const std::string& phrase) {
    try {
        read_safetensors(path);
        ADD_FAILURE() << "read_safetensors(" << path << ") did not throw";
    } catch (const Error& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find("safetensors file " + path + ": "), std::string::npos)
            << "message does not name the file: " << message;
        EXPECT_NE(message.find(phrase), std::string::npos) << "message lacks \"" << phrase << "\": " << message;
    }
}

// Writes `header` (+ buffer) to a file and expects reading it to fail with
// `phrase`.
void expect_header_error(const std::string& header, const std::string& phrase,
                         const std::vector<uint8_t>& buffer = {}) {
    TempDir dir;
    write_plain(dir.file("bad.safetensors"), file_bytes(header, buffer));
    expect_read_error(dir.file("bad.safetensors"), phrase);
}

// The temporary files a failed write may have left in `folder`.
std::vector<std::string> leftovers(const std::filesystem::path& folder) {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
        const auto name = entry.path().filename().string();
        if (name.find(".tmp-") != std::string::npos) names.push_back(name);
    }
    return names;
}

struct Weights {
    std::vector<float> kernel = {0.5f, -1.25f, 3.0f, 1e-20f, -0.0f, 7.75f};  // [2, 3]
    std::vector<int64_t> step = {1234567890123};                             // []
    std::vector<uint8_t> rng = {1, 2, 255};                                  // [3]

    std::vector<TensorToWrite> tensors() const {
        return {TensorToWrite::f32("trunk.0.weight", {2, 3}, kernel.data()),
                TensorToWrite::i64("step", {}, step.data()), TensorToWrite::u8("rng", {3}, rng.data())};
    }
};

TEST(Safetensors, WritesTheDocumentedByteLayout) {
    TempDir dir;
    const Weights weights;
    write_safetensors_atomically(dir.file("a.safetensors"), weights.tensors(), {{"format", "pt"}, {"epoch", "3"}});

    const auto bytes = read_bytes(dir.file("a.safetensors"));
    ASSERT_GE(bytes.size(), 8u);
    const uint64_t length = little_endian_u64(bytes);
    // Compact JSON; metadata first with its keys sorted, then the tensors in
    // the order given, packed one after another from offset 0.
    const std::string json = R"({"__metadata__":{"epoch":"3","format":"pt"},)"
                             R"("trunk.0.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                             R"("step":{"dtype":"I64","shape":[],"data_offsets":[24,32]},)"
                             R"("rng":{"dtype":"U8","shape":[3],"data_offsets":[32,35]}})";
    ASSERT_EQ(length, 232u);  // the JSON's 226 bytes padded to a multiple of 8
    ASSERT_EQ(json.size(), 226u);
    const std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(length));
    EXPECT_EQ(header, json + std::string(6, ' '));

    std::vector<uint8_t> buffer = raw(weights.kernel);
    const auto step = raw(weights.step);
    buffer.insert(buffer.end(), step.begin(), step.end());
    buffer.insert(buffer.end(), weights.rng.begin(), weights.rng.end());
    EXPECT_EQ(std::vector<uint8_t>(bytes.begin() + 8 + static_cast<std::ptrdiff_t>(length), bytes.end()), buffer);
}

TEST(Safetensors, PadsTheHeaderWithSpacesToAMultipleOfEightBytes) {
    const std::vector<float> value = {1.0f};
    for (size_t name_length = 1; name_length <= 9; ++name_length) {
        const std::vector<TensorToWrite> tensors = {
            TensorToWrite::f32(std::string(name_length, 'x'), {1}, value.data())};
        const auto header = safetensors_header(tensors, {});
        std::vector<uint8_t> bytes(header.size());
        std::memcpy(bytes.data(), header.data(), header.size());
        const uint64_t length = little_endian_u64(bytes);
        EXPECT_EQ(length, header.size() - 8);
        EXPECT_EQ(length % 8, 0u) << "name length " << name_length;
        const std::string text(bytes.begin() + 8, bytes.end());
        const auto close = text.rfind('}');
        ASSERT_NE(close, std::string::npos);
        EXPECT_LT(text.size() - 1 - close, 8u);
        EXPECT_EQ(text.find_first_not_of(' ', close + 1), std::string::npos) << "padding is not spaces: " << text;
    }
}

TEST(Safetensors, RoundTripsTensorsAndMetadata) {
    TempDir dir;
    const Weights weights;
    const SafetensorsMetadata metadata = {{"format", "pt"}, {"config", R"({"lr": 0.1, "name": "ünïcode"})"}};
    write_safetensors_atomically(dir.file("a.safetensors"), weights.tensors(), metadata);

    const SafetensorsFile file = read_safetensors(dir.file("a.safetensors"));
    EXPECT_EQ(file.metadata(), metadata);
    ASSERT_EQ(file.tensors().size(), 3u);
    EXPECT_EQ(file.tensors()[0].name, "trunk.0.weight");  // data-offset order = written order
    EXPECT_EQ(file.tensors()[1].name, "step");
    EXPECT_EQ(file.tensors()[2].name, "rng");
    EXPECT_EQ(file.f32("trunk.0.weight", {2, 3}), weights.kernel);
    EXPECT_EQ(file.i64("step", {}), weights.step);
    EXPECT_EQ(file.u8("rng", {3}), weights.rng);
    EXPECT_EQ(file.tensor("step").elements(), 1);

    std::vector<float> flat(6, -1.0f);
    file.copy_f32("trunk.0.weight", {2, 3}, flat.data());
    EXPECT_EQ(flat, weights.kernel);
}

TEST(Safetensors, MovingTheFileKeepsTensorBytesValid) {
    TempDir dir;
    const Weights weights;
    write_safetensors_atomically(dir.file("a.safetensors"), weights.tensors(), {});
    SafetensorsFile first = read_safetensors(dir.file("a.safetensors"));
    const SafetensorsFile moved = std::move(first);
    EXPECT_EQ(moved.f32("trunk.0.weight", {2, 3}), weights.kernel);
}

TEST(Safetensors, WritesAndReadsAFileWithoutTensors) {
    TempDir dir;
    write_safetensors_atomically(dir.file("empty.safetensors"), {}, {});
    const auto bytes = read_bytes(dir.file("empty.safetensors"));
    EXPECT_EQ(bytes, file_bytes("{}      "));
    const SafetensorsFile file = read_safetensors(dir.file("empty.safetensors"));
    EXPECT_TRUE(file.tensors().empty());
    EXPECT_TRUE(file.metadata().empty());
}

TEST(Safetensors, RoundTripsAZeroElementTensor) {
    TempDir dir;
    const std::vector<float> one = {2.5f};
    const std::vector<TensorToWrite> tensors = {TensorToWrite::f32("empty", {0, 4}, nullptr),
                                                TensorToWrite::f32("one", {1}, one.data())};
    write_safetensors_atomically(dir.file("a.safetensors"), tensors, {});
    const SafetensorsFile file = read_safetensors(dir.file("a.safetensors"));
    EXPECT_TRUE(file.f32("empty", {0, 4}).empty());
    EXPECT_EQ(file.f32("one", {1}), one);
}

TEST(Safetensors, SameArgumentsGiveTheSameBytes) {
    TempDir dir;
    const Weights weights;
    SafetensorsMetadata forward, backward;
    for (int i = 0; i < 10; ++i) forward.emplace("key" + std::to_string(i), std::to_string(i));
    for (int i = 9; i >= 0; --i) backward.emplace("key" + std::to_string(i), std::to_string(i));
    write_safetensors_atomically(dir.file("a.safetensors"), weights.tensors(), forward);
    write_safetensors_atomically(dir.file("b.safetensors"), weights.tensors(), backward);
    EXPECT_EQ(read_bytes(dir.file("a.safetensors")), read_bytes(dir.file("b.safetensors")));
}

TEST(Safetensors, ReadsEveryDtypeTheFormatDefines) {
    TempDir dir;
    const std::vector<std::pair<std::string, int>> dtypes = {
        {"BOOL", 1}, {"U8", 1},  {"I8", 1},   {"U16", 2},     {"I16", 2},     {"U32", 4}, {"I32", 4}, {"U64", 8},
        {"I64", 8},  {"F16", 2}, {"BF16", 2}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F32", 4}, {"F64", 8}};
    std::string header = "{";
    int offset = 0;
    for (const auto& [name, size] : dtypes) {
        header += "\"t" + name + "\":{\"dtype\":\"" + name + "\",\"shape\":[2],\"data_offsets\":[" +
                  std::to_string(offset) + "," + std::to_string(offset + 2 * size) + "]},";
        offset += 2 * size;
    }
    header.back() = '}';
    write_plain(dir.file("all.safetensors"), file_bytes(header, std::vector<uint8_t>(static_cast<size_t>(offset))));

    const SafetensorsFile file = read_safetensors(dir.file("all.safetensors"));
    ASSERT_EQ(file.tensors().size(), dtypes.size());
    for (const auto& [name, size] : dtypes) {
        const auto& tensor = file.tensor("t" + name);
        EXPECT_EQ(dtype_name(tensor.dtype), name);
        EXPECT_EQ(tensor.bytes.size(), static_cast<size_t>(2 * size));
    }
}

TEST(Safetensors, ReadsTheTensorsInOffsetOrderWhateverTheHeaderOrder) {
    TempDir dir;
    const std::vector<float> values = {1, 2, 3};
    write_plain(dir.file("a.safetensors"), file_bytes(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                                                      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                                      raw(values)));
    const SafetensorsFile file = read_safetensors(dir.file("a.safetensors"));
    ASSERT_EQ(file.tensors().size(), 2u);
    EXPECT_EQ(file.tensors()[0].name, "a");
    EXPECT_EQ(file.f32("a", {2}), (std::vector<float>{1, 2}));
    EXPECT_EQ(file.f32("b", {1}), (std::vector<float>{3}));
}

// ---------------------------------------------------------------- accessors

TEST(Safetensors, ShapeMismatchNamesTheCheckpointTensorAndBothShapes) {
    TempDir dir;
    const std::vector<float> kernel(32 * 9, 0.0f);
    const std::vector<TensorToWrite> tensors = {TensorToWrite::f32("trunk.0.weight", {32, 1, 3, 3}, kernel.data())};
    write_safetensors_atomically(dir.file("ck.safetensors"), tensors, {});
    const SafetensorsFile file = read_safetensors(dir.file("ck.safetensors"), "checkpoint");
    try {
        file.f32("trunk.0.weight", {16, 1, 3, 3});
        ADD_FAILURE() << "no error";
    } catch (const Error& error) {
        EXPECT_EQ(std::string(error.what()), "checkpoint " + dir.file("ck.safetensors") +
                                                 ": tensor 'trunk.0.weight' has shape [32, 1, 3, 3], expected "
                                                 "[16, 1, 3, 3]");
    }
}

TEST(Safetensors, DtypeMismatchAndMissingTensorAreErrors) {
    TempDir dir;
    const Weights weights;
    write_safetensors_atomically(dir.file("ck.safetensors"), weights.tensors(), {});
    const SafetensorsFile file = read_safetensors(dir.file("ck.safetensors"));
    const auto prefix = "safetensors file " + dir.file("ck.safetensors") + ": ";
    try {
        file.f32("step", {});
        ADD_FAILURE() << "no error";
    } catch (const Error& error) {
        EXPECT_EQ(std::string(error.what()), prefix + "tensor 'step' has dtype I64, expected F32");
    }
    try {
        file.tensor("heads.box.0.bias");
        ADD_FAILURE() << "no error";
    } catch (const Error& error) {
        EXPECT_EQ(std::string(error.what()), prefix +
                                                 "no tensor 'heads.box.0.bias'; expected one of the file's 3 "
                                                 "tensors (trunk.0.weight, step, rng)");
    }
    EXPECT_EQ(file.find("absent"), nullptr);
}

// ---------------------------------------------------------------- the writer

void expect_write_error(const std::vector<TensorToWrite>& tensors, const SafetensorsMetadata& metadata,
                        const std::string& phrase) {
    TempDir dir;
    const auto path = dir.file("w.safetensors");
    try {
        write_safetensors_atomically(path, tensors, metadata);
        ADD_FAILURE() << "no error";
    } catch (const Error& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find(path), std::string::npos) << message;
        EXPECT_NE(message.find(phrase), std::string::npos) << "message lacks \"" << phrase << "\": " << message;
    }
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_TRUE(leftovers(dir.path()).empty());
}

TEST(SafetensorsWriter, RejectsBadTensorsBeforeTouchingTheFile) {
    const std::vector<float> values(4, 1.0f);
    expect_write_error({TensorToWrite::f32("a", {4}, values.data()), TensorToWrite::f32("a", {4}, values.data())}, {},
                       "tensor 'a' given twice; expected unique names");
    expect_write_error({TensorToWrite::f32("__metadata__", {4}, values.data())}, {}, "reserved name");
    expect_write_error({TensorToWrite::f32("a", {2, -2}, values.data())}, {},
                       "has shape [2, -2]; expected non-negative dimensions");
    expect_write_error({TensorToWrite::f32("a", {4}, nullptr)}, {}, "tensor 'a' has no data");
    expect_write_error({}, {{"bad", std::string("\xff\xfe")}}, "expected UTF-8 names and metadata");
}

// ---------------------------------------------------------------- atomic writes

TEST(SafetensorsWriter, ReplacesAnExistingFileAndLeavesNoTemporaryFile) {
    TempDir dir;
    const auto path = dir.file("ck.safetensors");
    write_plain(path, {'o', 'l', 'd'});
    const Weights weights;
    write_safetensors_atomically(path, weights.tensors(), {});
    EXPECT_EQ(read_safetensors(path).f32("trunk.0.weight", {2, 3}), weights.kernel);
    EXPECT_TRUE(leftovers(dir.path()).empty());
}

TEST(SafetensorsWriter, TheTemporaryFileSitsBesideTheTargetWithThePid) {
    EXPECT_EQ(atomic_temp_path("/runs/a/ck.safetensors"), "/runs/a/ck.safetensors.tmp-" + std::to_string(::getpid()));
}

// Tests run as root, where a read-only folder does not stop writes; these
// make the OS refuse in ways that root cannot override.
TEST(SafetensorsWriter, FolderThatIsAFileFailsNamingThePathAndTheOsError) {
    TempDir dir;
    write_plain(dir.file("plain"), {'x'});
    const auto path = dir.file("plain") + "/ck.safetensors";
    const Weights weights;
    try {
        write_safetensors_atomically(path, weights.tensors(), {}, "checkpoint");
        ADD_FAILURE() << "no error";
    } catch (const Error& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find("checkpoint " + path + ": cannot create the temporary file"), std::string::npos)
            << message;
        EXPECT_NE(message.find("Not a directory"), std::string::npos) << message;
    }
    EXPECT_EQ(read_bytes(dir.file("plain")), (std::vector<uint8_t>{'x'}));
    EXPECT_TRUE(leftovers(dir.path()).empty());
}

TEST(SafetensorsWriter, MissingFolderFailsNamingThePathAndTheOsError) {
    TempDir dir;
    const auto path = dir.file("no-such-folder") + "/ck.safetensors";
    const Weights weights;
    try {
        write_safetensors_atomically(path, weights.tensors(), {});
        ADD_FAILURE() << "no error";
    } catch (const Error& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find(path), std::string::npos) << message;
        EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
    }
    EXPECT_FALSE(std::filesystem::exists(dir.file("no-such-folder")));
}

TEST(SafetensorsWriter, FailedRenameLeavesTheTargetAndNoTemporaryFile) {
    TempDir dir;
    // A non-empty folder at the target path: rename(2) refuses to replace it.
    const auto path = dir.file("ck.safetensors");
    std::filesystem::create_directory(path);
    write_plain(path + "/keep", {'k'});
    const Weights weights;
    try {
        write_safetensors_atomically(path, weights.tensors(), {});
        ADD_FAILURE() << "no error";
    } catch (const Error& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find(path + ": cannot rename the temporary file"), std::string::npos) << message;
        EXPECT_NE(message.find("previous file at this path, if any, is unchanged"), std::string::npos) << message;
    }
    EXPECT_EQ(read_bytes(path + "/keep"), (std::vector<uint8_t>{'k'}));
    EXPECT_TRUE(leftovers(dir.path()).empty());
}

// Lowers the file size limit (which binds root too) and turns SIGXFSZ into
// a plain EFBIG from write(2); restores both when it dies.
class FileSizeLimit {
public:
    explicit FileSizeLimit(rlim_t bytes) {
        getrlimit(RLIMIT_FSIZE, &saved_);
        previous_handler_ = std::signal(SIGXFSZ, SIG_IGN);
        rlimit lowered = saved_;
        lowered.rlim_cur = bytes;
        EXPECT_EQ(setrlimit(RLIMIT_FSIZE, &lowered), 0);
    }
    ~FileSizeLimit() {
        setrlimit(RLIMIT_FSIZE, &saved_);
        std::signal(SIGXFSZ, previous_handler_);
    }
    FileSizeLimit(const FileSizeLimit&) = delete;
    FileSizeLimit& operator=(const FileSizeLimit&) = delete;

private:
    rlimit saved_{};
    void (*previous_handler_)(int) = SIG_DFL;
};

TEST(SafetensorsWriter, FailureMidWriteKeepsThePreviousFileIntact) {
    TempDir dir;
    const auto path = dir.file("ck.safetensors");
    const Weights weights;
    write_safetensors_atomically(path, weights.tensors(), {});
    const auto before = read_bytes(path);

    const std::vector<float> large(4096, 1.0f);  // 16 KiB: more than the limit below
    const std::vector<TensorToWrite> tensors = {TensorToWrite::f32("large", {4096}, large.data())};
    {
        const FileSizeLimit limit(4096);
        try {
            write_safetensors_atomically(path, tensors, {});
            ADD_FAILURE() << "no error";
        } catch (const Error& error) {
            const std::string message = error.what();
            EXPECT_NE(message.find(path + ": cannot write the temporary file"), std::string::npos) << message;
            EXPECT_NE(message.find("File too large"), std::string::npos) << message;
        }
    }
    EXPECT_EQ(read_bytes(path), before);
    EXPECT_TRUE(leftovers(dir.path()).empty());
}

// ---------------------------------------------------------------- reader errors

TEST(SafetensorsReader, MissingFileIsAnError) {
    TempDir dir;
    expect_read_error(dir.file("absent.safetensors"), "cannot open (No such file or directory)");
}

TEST(SafetensorsReader, DirectoryIsAnError) {
    TempDir dir;
    expect_read_error(dir.path(), "expected a readable regular file");
}

TEST(SafetensorsReader, FileShorterThanTheLengthIsAnError) {
    TempDir dir;
    write_plain(dir.file("short.safetensors"), {1, 2, 3});
    expect_read_error(dir.file("short.safetensors"), "the file is 3 bytes, too short for the 8-byte header length");
    write_plain(dir.file("empty.safetensors"), {});
    expect_read_error(dir.file("empty.safetensors"), "the file is 0 bytes");
}

TEST(SafetensorsReader, AbsurdHeaderLengthIsAnError) {
    TempDir dir;
    write_plain(dir.file("absurd.safetensors"), file_bytes("{}", {}, uint64_t{1} << 40));
    expect_read_error(dir.file("absurd.safetensors"),
                      "header length 1099511627776 is absurd; expected at most 100000000 bytes");
}

TEST(SafetensorsReader, HeaderLengthPastTheEndIsAnError) {
    TempDir dir;
    write_plain(dir.file("cut.safetensors"), file_bytes("{}", {}, 64));
    expect_read_error(dir.file("cut.safetensors"),
                      "header length 64 runs past the end of the file (2 bytes follow the length)");
}

TEST(SafetensorsReader, HeaderThatIsNotJsonIsAnError) {
    expect_header_error("{\"a\": ", "header is not valid JSON");
    expect_header_error("{\"a\": ", "expected a JSON object");
    expect_header_error("\xff\xfe{}", "header is not valid JSON");
}

TEST(SafetensorsReader, HeaderThatIsNotAnObjectIsAnError) {
    expect_header_error("[1, 2]  ", "header is a JSON array; expected a JSON object");
    expect_header_error("42", "header is a JSON number; expected a JSON object");
}

TEST(SafetensorsReader, BadMetadataIsAnError) {
    expect_header_error(R"({"__metadata__": [1]})", "\"__metadata__\" is a JSON array; expected an object of strings");
    expect_header_error(R"({"__metadata__": {"epoch": 3}})",
                        "\"__metadata__\" entry \"epoch\" is a JSON number; expected a string");
}

TEST(SafetensorsReader, TensorEntryWithMissingOrWrongFieldsIsAnError) {
    expect_header_error(R"({"w": 5})",
                        "tensor 'w' is a JSON number; expected an object with dtype, shape and "
                        "data_offsets");
    expect_header_error(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", "tensor 'w' has no \"dtype\"");
    expect_header_error(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", "tensor 'w' has no \"shape\"");
    expect_header_error(R"({"w": {"dtype": "F32", "shape": [1]}})", "tensor 'w' has no \"data_offsets\"");
    expect_header_error(R"({"w": {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]}})",
                        "tensor 'w': shape is a JSON string; expected an array");
    expect_header_error(R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})",
                        "tensor 'w': shape holds -1; expected integers from 0 to 2^62");
    expect_header_error(R"({"w": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}})",
                        "tensor 'w': shape holds 1.0; expected integers");
    expect_header_error(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}})",
                        "tensor 'w': data_offsets is [0,4,8]; expected an array [begin, end]");
    expect_header_error(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]}})",
                        "tensor 'w': data_offsets holds \"4\"; expected integers");
    expect_header_error(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "extra": 1}})",
                        "tensor 'w' has an unknown key \"extra\"; expected only dtype, shape and data_offsets");
}

TEST(SafetensorsReader, UnknownDtypeIsAnErrorListingTheKnownOnes) {
    expect_header_error(R"({"w": {"dtype": "F31", "shape": [1], "data_offsets": [0, 4]}})",
                        "tensor 'w': unknown dtype \"F31\"; expected one of BOOL, U8, I8");
    expect_header_error(R"({"w": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}})",
                        "tensor 'w': unknown dtype 4; expected one of");
}

TEST(SafetensorsReader, OffsetsThatDisagreeWithTheShapeAreAnError) {
    expect_header_error(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})",
                        "tensor 'w': data_offsets [4, 0] end before they begin");
    expect_header_error(R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})",
                        "tensor 'w': data_offsets [0, 20] hold 20 bytes; expected 24 ([2, 3] F32 elements of 4 bytes)",
                        std::vector<uint8_t>(20));
    expect_header_error(R"({"w": {"dtype": "U8", "shape": [4294967296, 4294967296], "data_offsets": [0, 1]}})",
                        "tensor 'w': shape [4294967296, 4294967296] is too large");
}

TEST(SafetensorsReader, OffsetsPastTheBufferAreATruncatedFile) {
    expect_header_error(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
                        "tensor 'w': data_offsets [0, 8] run past the data buffer's 5 bytes; the file is truncated",
                        std::vector<uint8_t>(5));
}

TEST(SafetensorsReader, AFileCutShortIsAnError) {
    TempDir dir;
    const Weights weights;
    write_safetensors_atomically(dir.file("ck.safetensors"), weights.tensors(), {});
    auto bytes = read_bytes(dir.file("ck.safetensors"));
    bytes.pop_back();
    write_plain(dir.file("ck.safetensors"), bytes);
    expect_read_error(dir.file("ck.safetensors"),
                      "tensor 'rng': data_offsets [32, 35] run past the data buffer's 34 "
                      "bytes; the file is truncated");
}

TEST(SafetensorsReader, OverlappingTensorsAreAnError) {
    expect_header_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                        R"( "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                        "tensors 'a' and 'b' overlap (data_offsets [0, 8] and [4, 8])", std::vector<uint8_t>(8));
}

TEST(SafetensorsReader, GapsAndTrailingBytesAreAnError) {
    expect_header_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                        "no tensor covers bytes [0, 4) of the data buffer (before tensor 'a')",
                        std::vector<uint8_t>(8));
    expect_header_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
                        "3 bytes after the last tensor's data (the tensors cover 4 of the 7-byte data buffer)",
                        std::vector<uint8_t>(7));
    expect_header_error("{}", "1 bytes after the last tensor's data", std::vector<uint8_t>(1));
}

TEST(SafetensorsReader, DuplicateNamesAreAnErrorNotSilentlyMerged) {
    expect_header_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                        R"( "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                        "header has the key \"a\" twice; expected unique keys", std::vector<uint8_t>(8));
    expect_header_error(R"({"a": {"dtype": "F32", "dtype": "U8", "shape": [1], "data_offsets": [0, 4]}})",
                        "header has the key \"dtype\" twice", std::vector<uint8_t>(4));
}

}  // namespace
}  // namespace ladon::io
