#include "engine/io/safetensors.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "engine/io/atomic_file.hpp"
#include "engine/io/mapped_file.hpp"
#include "ladon/error.hpp"

namespace ladon::io {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; this reader copies it as is");

constexpr std::string_view kMetadataKey = "__metadata__";
constexpr size_t kLengthBytes = 8;
// The reference implementation's limit: a larger header is corrupt (or an
// attempt to make the reader allocate it).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kHeaderAlignment = 8;

struct DtypeInfo {
    SafetensorsDtype dtype;
    std::string_view name;
    size_t size;
};
constexpr std::array<DtypeInfo, 15> kDtypes = {{
    {SafetensorsDtype::boolean, "BOOL", 1},
    {SafetensorsDtype::u8, "U8", 1},
    {SafetensorsDtype::i8, "I8", 1},
    {SafetensorsDtype::u16, "U16", 2},
    {SafetensorsDtype::i16, "I16", 2},
    {SafetensorsDtype::u32, "U32", 4},
    {SafetensorsDtype::i32, "I32", 4},
    {SafetensorsDtype::u64, "U64", 8},
    {SafetensorsDtype::i64, "I64", 8},
    {SafetensorsDtype::f8_e4m3, "F8_E4M3", 1},
    {SafetensorsDtype::f8_e5m2, "F8_E5M2", 1},
    {SafetensorsDtype::f16, "F16", 2},
    {SafetensorsDtype::bf16, "BF16", 2},
    {SafetensorsDtype::f32, "F32", 4},
    {SafetensorsDtype::f64, "F64", 8},
}};

const DtypeInfo& info(SafetensorsDtype dtype) { return kDtypes.at(static_cast<size_t>(dtype)); }

std::string shape_text(std::span<const int64_t> shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

// product(shape) * element_size, or nullopt when it does not fit in 63 bits.
std::optional<uint64_t> byte_count(std::span<const int64_t> shape, size_t element_size) {
    constexpr auto kLimit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    uint64_t bytes = element_size;
    for (const int64_t dim : shape) {
        const auto extent = static_cast<uint64_t>(dim);
        if (extent != 0 && bytes > kLimit / extent) return std::nullopt;
        bytes *= extent;
    }
    return bytes;
}

int64_t element_count(std::span<const int64_t> shape) {
    int64_t count = 1;
    for (const int64_t dim : shape) count *= dim;
    return count;
}

// ---------------------------------------------------------------- header parsing

// Validates one file's header and data buffer; every message starts with
// the file's source.
class HeaderParser {
public:
    explicit HeaderParser(std::string source) : source_(std::move(source)) {}

    [[noreturn]] void fail(std::string_view what) const { throw Error(fmt::format("{}: {}", source_, what)); }

    nlohmann::json parse_json(std::string_view text) const {
        // A JSON object keeps the last of two equal keys; the parser
        // callback sees every key, so a stack of the keys seen in each open
        // object catches duplicates at any depth.
        std::vector<std::set<std::string>> open_objects;
        std::optional<std::string> duplicate;
        const auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
            using Event = nlohmann::json::parse_event_t;
            if (event == Event::object_start) {
                open_objects.emplace_back();
            } else if (event == Event::object_end) {
                open_objects.pop_back();
            } else if (event == Event::key && !open_objects.empty()) {
                const auto& key = parsed.get_ref<const std::string&>();
                if (!open_objects.back().insert(key).second && !duplicate) duplicate = key;
            }
            return true;
        };
        nlohmann::json header;
        try {
            header = nlohmann::json::parse(text.begin(), text.end(), callback);
        } catch (const nlohmann::json::exception& error) {
            fail(fmt::format("header is not valid JSON ({}); expected a JSON object", error.what()));
        }
        if (duplicate) fail(fmt::format("header has the key \"{}\" twice; expected unique keys", *duplicate));
        if (!header.is_object()) fail(fmt::format("header is a JSON {}; expected a JSON object", header.type_name()));
        return header;
    }

    SafetensorsMetadata metadata(const nlohmann::json& value) const {
        if (!value.is_object()) {
            fail(fmt::format("\"{}\" is a JSON {}; expected an object of strings", kMetadataKey, value.type_name()));
        }
        SafetensorsMetadata metadata;
        for (const auto& [key, item] : value.items()) {
            if (!item.is_string()) {
                fail(fmt::format("\"{}\" entry \"{}\" is a JSON {}; expected a string", kMetadataKey, key,
                                 item.type_name()));
            }
            metadata.emplace(key, item.get<std::string>());
        }
        return metadata;
    }

    // One tensor's entry; `bytes` is left for the caller to point at the
    // buffer once the offsets are known to be in range.
    struct Entry {
        SafetensorsTensor tensor;
        uint64_t begin = 0;
        uint64_t end = 0;
    };

    Entry entry(const std::string& name, const nlohmann::json& value) const {
        const auto where = fmt::format("tensor '{}'", name);
        if (!value.is_object()) {
            fail(fmt::format("{} is a JSON {}; expected an object with dtype, shape and data_offsets", where,
                             value.type_name()));
        }
        for (const auto& [key, item] : value.items()) {
            if (key != "dtype" && key != "shape" && key != "data_offsets") {
                fail(fmt::format("{} has an unknown key \"{}\"; expected only dtype, shape and data_offsets", where,
                                 key));
            }
        }
        Entry entry;
        entry.tensor.name = name;
        entry.tensor.dtype = dtype(where, member(where, value, "dtype"));

        const auto& shape = member(where, value, "shape");
        if (!shape.is_array()) fail(fmt::format("{}: shape is a JSON {}; expected an array", where, shape.type_name()));
        for (const auto& dim : shape) {
            entry.tensor.shape.push_back(static_cast<int64_t>(non_negative(where, "shape", dim)));
        }

        const auto& offsets = member(where, value, "data_offsets");
        if (!offsets.is_array() || offsets.size() != 2) {
            fail(fmt::format("{}: data_offsets is {}; expected an array [begin, end]", where, offsets.dump()));
        }
        entry.begin = non_negative(where, "data_offsets", offsets[0]);
        entry.end = non_negative(where, "data_offsets", offsets[1]);
        if (entry.end < entry.begin) {
            fail(fmt::format("{}: data_offsets [{}, {}] end before they begin; expected begin <= end", where,
                             entry.begin, entry.end));
        }
        const size_t element_size = info(entry.tensor.dtype).size;
        const auto expected = byte_count(entry.tensor.shape, element_size);
        if (!expected) fail(fmt::format("{}: shape {} is too large", where, shape_text(entry.tensor.shape)));
        if (entry.end - entry.begin != *expected) {
            fail(fmt::format("{}: data_offsets [{}, {}] hold {} bytes; expected {} ({} {} elements of {} bytes)", where,
                             entry.begin, entry.end, entry.end - entry.begin, *expected, shape_text(entry.tensor.shape),
                             info(entry.tensor.dtype).name, element_size));
        }
        return entry;
    }

    // The entries must tile [0, buffer_bytes) exactly, as the format asks.
    void check_coverage(std::vector<Entry>& entries, uint64_t buffer_bytes) const {
        for (const auto& entry : entries) {
            if (entry.end > buffer_bytes) {
                fail(
                    fmt::format("tensor '{}': data_offsets [{}, {}] run past the data buffer's {} bytes; the file "
                                "is truncated or its header is wrong",
                                entry.tensor.name, entry.begin, entry.end, buffer_bytes));
            }
        }
        std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
            return std::tie(a.begin, a.end, a.tensor.name) < std::tie(b.begin, b.end, b.tensor.name);
        });
        uint64_t covered = 0;
        const Entry* previous = nullptr;
        for (const auto& entry : entries) {
            if (entry.begin < covered) {
                fail(fmt::format(
                    "tensors '{}' and '{}' overlap (data_offsets [{}, {}] and [{}, {}]); expected "
                    "each byte of the data buffer to belong to one tensor",
                    previous->tensor.name, entry.tensor.name, previous->begin, previous->end, entry.begin, entry.end));
            }
            if (entry.begin > covered) {
                fail(
                    fmt::format("no tensor covers bytes [{}, {}) of the data buffer (before tensor '{}'); expected "
                                "the tensors to cover the buffer without gaps",
                                covered, entry.begin, entry.tensor.name));
            }
            covered = entry.end;
            previous = &entry;
        }
        if (covered != buffer_bytes) {
            fail(
                fmt::format("{} bytes after the last tensor's data (the tensors cover {} of the {}-byte data "
                            "buffer); expected the tensors to cover the buffer exactly",
                            buffer_bytes - covered, covered, buffer_bytes));
        }
    }

private:
    const nlohmann::json& member(const std::string& where, const nlohmann::json& object, const char* key) const {
        const auto found = object.find(key);
        if (found == object.end())
            fail(fmt::format("{} has no \"{}\"; expected dtype, shape and data_offsets", where, key));
        return *found;
    }

    SafetensorsDtype dtype(const std::string& where, const nlohmann::json& value) const {
        if (value.is_string()) {
            const auto& name = value.get_ref<const std::string&>();
            for (const auto& candidate : kDtypes) {
                if (candidate.name == name) return candidate.dtype;
            }
        }
        std::vector<std::string_view> names;
        for (const auto& candidate : kDtypes) names.push_back(candidate.name);
        fail(fmt::format("{}: unknown dtype {}; expected one of {}", where, value.dump(), fmt::join(names, ", ")));
    }

    uint64_t non_negative(const std::string& where, std::string_view field, const nlohmann::json& value) const {
        // Larger than any real file, and small enough that sums and products
        // of two of them cannot overflow.
        constexpr uint64_t kLimit = uint64_t{1} << 62;
        if (!value.is_number_unsigned() || value.get<uint64_t>() > kLimit) {
            fail(fmt::format("{}: {} holds {}; expected integers from 0 to 2^62", where, field, value.dump()));
        }
        return value.get<uint64_t>();
    }

    std::string source_;
};

}  // namespace

std::string_view dtype_name(SafetensorsDtype dtype) { return info(dtype).name; }
size_t dtype_size(SafetensorsDtype dtype) { return info(dtype).size; }

int64_t SafetensorsTensor::elements() const { return element_count(shape); }

// ---------------------------------------------------------------- writing

TensorToWrite TensorToWrite::f32(std::string name, std::vector<int64_t> shape, const float* data) {
    return {std::move(name), SafetensorsDtype::f32, std::move(shape), data};
}
TensorToWrite TensorToWrite::i64(std::string name, std::vector<int64_t> shape, const int64_t* data) {
    return {std::move(name), SafetensorsDtype::i64, std::move(shape), data};
}
TensorToWrite TensorToWrite::u8(std::string name, std::vector<int64_t> shape, const uint8_t* data) {
    return {std::move(name), SafetensorsDtype::u8, std::move(shape), data};
}

namespace {

// Checks one tensor to write and returns its byte count. `writer` starts
// the error messages.
uint64_t checked_bytes(const TensorToWrite& tensor, std::string_view writer) {
    const auto fail = [&](std::string_view what) {
        throw Error(fmt::format("{}: tensor '{}' {}", writer, tensor.name, what));
    };
    if (tensor.name == kMetadataKey) fail(fmt::format("uses the reserved name; expected any other name"));
    for (const int64_t dim : tensor.shape) {
        if (dim < 0) fail(fmt::format("has shape {}; expected non-negative dimensions", shape_text(tensor.shape)));
    }
    const auto bytes = byte_count(tensor.shape, dtype_size(tensor.dtype));
    if (!bytes) fail(fmt::format("has shape {}, too large to write", shape_text(tensor.shape)));
    if (*bytes > 0 && tensor.data == nullptr) fail("has no data; expected a pointer to its elements");
    return *bytes;
}

std::vector<std::byte> encode_header(std::span<const TensorToWrite> tensors, const SafetensorsMetadata& metadata,
                                     std::string_view writer) {
    // ordered_json keeps insertion order: metadata first (as the reference
    // writer puts it), then the tensors in the order they are laid out.
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        auto& entries = header[std::string(kMetadataKey)];
        entries = nlohmann::ordered_json::object();
        for (const auto& [key, value] : metadata) entries[key] = value;
    }
    uint64_t offset = 0;
    for (const auto& tensor : tensors) {
        const uint64_t bytes = checked_bytes(tensor, writer);
        if (header.contains(tensor.name)) {
            throw Error(fmt::format("{}: tensor '{}' given twice; expected unique names", writer, tensor.name));
        }
        header[tensor.name] = {
            {"dtype", dtype_name(tensor.dtype)}, {"shape", tensor.shape}, {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& error) {  // a name or a metadata string that is not UTF-8
        throw Error(
            fmt::format("{}: cannot encode the header ({}); expected UTF-8 names and metadata", writer, error.what()));
    }
    text.append((kHeaderAlignment - text.size() % kHeaderAlignment) % kHeaderAlignment, ' ');

    std::vector<std::byte> bytes(kLengthBytes + text.size());
    uint64_t length = text.size();
    for (size_t i = 0; i < kLengthBytes; ++i, length >>= 8) bytes[i] = static_cast<std::byte>(length & 0xff);
    std::memcpy(bytes.data() + kLengthBytes, text.data(), text.size());
    return bytes;
}

}  // namespace

std::vector<std::byte> safetensors_header(std::span<const TensorToWrite> tensors, const SafetensorsMetadata& metadata) {
    return encode_header(tensors, metadata, "safetensors writer");
}

void write_safetensors_atomically(const std::string& path, std::span<const TensorToWrite> tensors,
                                  const SafetensorsMetadata& metadata, std::string_view kind) {
    const auto writer = fmt::format("{} {}: cannot write", kind, path);
    const auto header = encode_header(tensors, metadata, writer);  // validates before the file is touched
    AtomicFileWriter file(path, kind);
    file.write(header);
    for (const auto& tensor : tensors) file.write(tensor.data, checked_bytes(tensor, writer));
    file.commit();
}

// ---------------------------------------------------------------- reading

SafetensorsFile parse_safetensors(std::span<const std::byte> file, std::string_view name, std::string_view kind) {
    SafetensorsFile result;
    result.source_ = fmt::format("{} {}", kind, name);
    const HeaderParser parser(result.source_);

    if (file.size() < kLengthBytes) {
        parser.fail(
            fmt::format("the file is {} bytes, too short for the 8-byte header length; expected a "
                        "safetensors file",
                        file.size()));
    }
    uint64_t header_bytes = 0;
    for (size_t i = kLengthBytes; i-- > 0;) header_bytes = (header_bytes << 8) | std::to_integer<uint64_t>(file[i]);
    if (header_bytes > kMaxHeaderBytes) {
        parser.fail(fmt::format("header length {} is absurd; expected at most {} bytes (not a safetensors file?)",
                                header_bytes, kMaxHeaderBytes));
    }
    const uint64_t after_length = file.size() - kLengthBytes;
    if (header_bytes > after_length) {
        parser.fail(
            fmt::format("header length {} runs past the end of the file ({} bytes follow the length); the "
                        "file is truncated or not a safetensors file",
                        header_bytes, after_length));
    }
    const auto* header_begin = reinterpret_cast<const char*>(file.data() + kLengthBytes);
    const nlohmann::json header = parser.parse_json({header_begin, static_cast<size_t>(header_bytes)});

    std::vector<HeaderParser::Entry> entries;
    for (const auto& [key, value] : header.items()) {
        if (key == kMetadataKey) {
            result.metadata_ = parser.metadata(value);
        } else {
            entries.push_back(parser.entry(key, value));
        }
    }
    const auto buffer = file.subspan(kLengthBytes + static_cast<size_t>(header_bytes));
    parser.check_coverage(entries, buffer.size());

    result.buffer_.assign(buffer.begin(), buffer.end());
    for (auto& entry : entries) {
        entry.tensor.bytes =
            std::span<const std::byte>(result.buffer_)
                .subspan(static_cast<size_t>(entry.begin), static_cast<size_t>(entry.end - entry.begin));
        result.tensors_.push_back(std::move(entry.tensor));
    }
    return result;
}

SafetensorsFile read_safetensors(const std::string& path, std::string_view kind) {
    const MappedFile file(path, kind);
    return parse_safetensors(file.bytes(), path, kind);
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
    const auto found = std::find_if(tensors_.begin(), tensors_.end(),
                                    [&](const SafetensorsTensor& tensor) { return tensor.name == name; });
    return found == tensors_.end() ? nullptr : &*found;
}

const SafetensorsTensor& SafetensorsFile::tensor(std::string_view name) const {
    if (const auto* found = find(name)) return *found;
    std::vector<std::string_view> names;
    for (const auto& tensor : tensors_) names.push_back(tensor.name);
    throw Error(fmt::format("{}: no tensor '{}'; expected one of the file's {} tensors ({})", source_, name,
                            tensors_.size(), fmt::join(names, ", ")));
}

const SafetensorsTensor& SafetensorsFile::checked(std::string_view name, SafetensorsDtype dtype,
                                                  const std::vector<int64_t>& expected_shape) const {
    const auto& found = tensor(name);
    if (found.dtype != dtype) {
        throw Error(fmt::format("{}: tensor '{}' has dtype {}, expected {}", source_, name, dtype_name(found.dtype),
                                dtype_name(dtype)));
    }
    if (found.shape != expected_shape) {
        throw Error(fmt::format("{}: tensor '{}' has shape {}, expected {}", source_, name, shape_text(found.shape),
                                shape_text(expected_shape)));
    }
    return found;
}

namespace {

template <typename T>
std::vector<T> copy_out(const SafetensorsTensor& tensor) {
    std::vector<T> values(tensor.bytes.size() / sizeof(T));
    if (!values.empty()) std::memcpy(values.data(), tensor.bytes.data(), tensor.bytes.size());
    return values;
}

}  // namespace

std::vector<float> SafetensorsFile::f32(std::string_view name, const std::vector<int64_t>& expected_shape) const {
    return copy_out<float>(checked(name, SafetensorsDtype::f32, expected_shape));
}

std::vector<int64_t> SafetensorsFile::i64(std::string_view name, const std::vector<int64_t>& expected_shape) const {
    return copy_out<int64_t>(checked(name, SafetensorsDtype::i64, expected_shape));
}

std::vector<uint8_t> SafetensorsFile::u8(std::string_view name, const std::vector<int64_t>& expected_shape) const {
    return copy_out<uint8_t>(checked(name, SafetensorsDtype::u8, expected_shape));
}

void SafetensorsFile::copy_f32(std::string_view name, const std::vector<int64_t>& expected_shape,
                               float* destination) const {
    const auto& found = checked(name, SafetensorsDtype::f32, expected_shape);
    if (!found.bytes.empty()) std::memcpy(destination, found.bytes.data(), found.bytes.size());
}

}  // namespace ladon::io
