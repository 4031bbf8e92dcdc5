#include "engine/data/npy.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "engine/io/atomic_file.hpp"
#include "ladon/error.hpp"

namespace ladon::data {
namespace {

static_assert(std::endian::native == std::endian::little, "NPY data is read as little-endian ('<') as is");

constexpr std::string_view kKind = "NPY file";
constexpr std::array<unsigned char, 6> kMagic = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr size_t kArrayAlignment = 64;  // numpy pads the header so the data starts at a multiple of this
// numpy leaves room after the dict for the first dimension to grow to this
// many digits (np.lib.format.GROWTH_AXIS_MAX_DIGITS), so the header can be
// rewritten in place when rows are appended.
constexpr size_t kGrowthAxisMaxDigits = 21;
constexpr std::string_view kExampleHeader = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";

struct DtypeInfo {
    NpyDtype dtype;
    std::string_view descr;
    size_t size;
};
constexpr std::array<DtypeInfo, 6> kDtypes = {{
    {NpyDtype::u8, "|u1", 1},
    {NpyDtype::b1, "|b1", 1},
    {NpyDtype::i32, "<i4", 4},
    {NpyDtype::i64, "<i8", 8},
    {NpyDtype::f32, "<f4", 4},
    {NpyDtype::f64, "<f8", 8},
}};

const DtypeInfo& info(NpyDtype dtype) { return kDtypes.at(static_cast<size_t>(dtype)); }

std::string supported_descrs() {
    std::vector<std::string> quoted;
    for (const auto& entry : kDtypes) quoted.push_back(fmt::format("'{}'", entry.descr));
    return fmt::format("{}", fmt::join(quoted, ", "));
}

[[noreturn]] void fail(std::string_view name, std::string_view what) {
    throw Error(fmt::format("{} {}: {}", kKind, name, what));
}

// ---------------------------------------------------------------- the header dict

// A value of the header dict: numpy writes strings, booleans and tuples of
// integers, nothing else.
struct PyValue {
    enum class Kind { string, boolean, tuple } kind = Kind::string;
    std::string text;
    bool flag = false;
    std::vector<int64_t> items;
};

// A strict parser for the one-line dict literal numpy writes (ast.literal_eval
// accepts more, but nothing numpy produces needs more). Whitespace may appear
// between tokens; the trailing comma numpy writes is allowed.
class DictParser {
public:
    DictParser(std::string_view text, std::string_view name) : text_(text), name_(name) {}

    std::vector<std::pair<std::string, PyValue>> parse() {
        std::vector<std::pair<std::string, PyValue>> entries;
        skip_space();
        expect('{', "'{' to open the dict");
        skip_space();
        while (peek() != '}') {
            if (peek() != '\'' && peek() != '"') fail_here("a quoted key or '}'");
            std::string key = string();
            skip_space();
            expect(':', "':' after a key");
            skip_space();
            entries.emplace_back(std::move(key), value());
            skip_space();
            if (peek() == ',') {
                ++position_;
                skip_space();
            } else if (peek() != '}') {
                fail_here("',' or '}' after a value");
            }
        }
        ++position_;
        skip_space();
        if (position_ != text_.size()) fail_here("only spaces after the dict");
        return entries;
    }

private:
    static constexpr int kEnd = -1;

    int peek() const { return position_ < text_.size() ? static_cast<unsigned char>(text_[position_]) : kEnd; }

    void skip_space() {
        while (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r') ++position_;
    }

    void expect(char wanted, std::string_view what) {
        if (peek() != wanted) fail_here(what);
        ++position_;
    }

    [[noreturn]] void fail_here(std::string_view expected) const {
        const int found = peek();
        std::string seen;
        if (found == kEnd) {
            seen = "the end of the header";
        } else if (found >= 0x20 && found < 0x7f) {
            seen = fmt::format("'{}'", static_cast<char>(found));
        } else {
            seen = fmt::format("byte 0x{:02x}", found);
        }
        fail(name_, fmt::format("malformed header: at character {} of the dict, expected {}, found {}; expected a "
                                "header like {}",
                                position_, expected, seen, kExampleHeader));
    }

    std::string string() {
        const char quote = text_[position_++];
        const size_t begin = position_;
        while (peek() != quote) {
            if (peek() == kEnd || peek() == '\n') fail_here("the closing quote of a string");
            if (peek() == '\\') fail_here("a string without escapes");
            ++position_;
        }
        std::string result(text_.substr(begin, position_ - begin));
        ++position_;
        return result;
    }

    PyValue value() {
        PyValue result;
        const int first = peek();
        if (first == '\'' || first == '"') {
            result.kind = PyValue::Kind::string;
            result.text = string();
        } else if (text_.substr(position_).starts_with("True")) {
            result.kind = PyValue::Kind::boolean;
            result.flag = true;
            position_ += 4;
        } else if (text_.substr(position_).starts_with("False")) {
            result.kind = PyValue::Kind::boolean;
            position_ += 5;
        } else if (first == '(') {
            result.kind = PyValue::Kind::tuple;
            result.items = tuple();
        } else if (first == '[') {
            fail_here("a string, True, False or a tuple (lists appear in structured dtypes, which are not supported)");
        } else {
            fail_here("a string, True, False or a tuple");
        }
        return result;
    }

    // "()", "(3,)", "(3, 4)", "(3, 4,)"; "(3)" is the number 3 in Python, so
    // a one-item tuple needs its comma.
    std::vector<int64_t> tuple() {
        std::vector<int64_t> items;
        ++position_;
        skip_space();
        bool comma_after_last = false;
        while (peek() != ')') {
            items.push_back(integer());
            skip_space();
            comma_after_last = peek() == ',';
            if (comma_after_last) {
                ++position_;
                skip_space();
            } else if (peek() != ')') {
                fail_here("',' or ')' in the shape tuple");
            }
        }
        if (items.size() == 1 && !comma_after_last)
            fail_here("',' after the only dimension: (n,) is a tuple, (n) is not");
        ++position_;
        return items;
    }

    int64_t integer() {
        if (peek() < '0' || peek() > '9') fail_here("a non-negative integer dimension");
        int64_t number = 0;
        while (peek() >= '0' && peek() <= '9') {
            const int digit = peek() - '0';
            if (number > (std::numeric_limits<int64_t>::max() - digit) / 10) fail_here("a dimension below 2^63");
            number = number * 10 + digit;
            ++position_;
        }
        return number;
    }

    std::string_view text_;
    std::string_view name_;
    size_t position_ = 0;
};

uint32_t little_endian(std::span<const std::byte> bytes) {
    uint32_t value = 0;
    for (size_t i = bytes.size(); i-- > 0;) value = (value << 8) | std::to_integer<uint32_t>(bytes[i]);
    return value;
}

std::optional<NpyDtype> dtype_for(std::string_view descr) {
    for (const auto& entry : kDtypes) {
        if (entry.descr == descr) return entry.dtype;
    }
    return std::nullopt;
}

std::string printable(std::span<const std::byte> bytes) {
    std::string text;
    for (const std::byte byte : bytes) {
        const auto value = std::to_integer<unsigned>(byte);
        text += value >= 0x20 && value < 0x7f ? fmt::format("{}", static_cast<char>(value))
                                              : fmt::format("\\x{:02x}", value);
    }
    return text;
}

// product(shape) * item size, or nullopt past 2^62 bytes (more than any file
// holds, and small enough not to overflow on the way).
std::optional<uint64_t> data_bytes(NpyDtype dtype, std::span<const int64_t> shape) {
    constexpr uint64_t kLimit = uint64_t{1} << 62;
    uint64_t bytes = info(dtype).size;
    for (const int64_t dim : shape) {
        const auto extent = static_cast<uint64_t>(dim);
        if (extent != 0 && bytes > kLimit / extent) return std::nullopt;
        bytes *= extent;
    }
    return bytes;
}

template <typename T>
T load(const std::byte* at) {
    T value;
    std::memcpy(&value, at, sizeof(T));  // the data need not be aligned
    return value;
}

template <typename T>
void convert(const std::byte* source, int64_t count, float* destination, float scale) {
    for (int64_t i = 0; i < count; ++i) {
        destination[i] = static_cast<float>(load<T>(source + static_cast<size_t>(i) * sizeof(T))) * scale;
    }
}

}  // namespace

std::string_view npy_descr(NpyDtype dtype) { return info(dtype).descr; }
size_t npy_item_size(NpyDtype dtype) { return info(dtype).size; }
bool npy_is_integer(NpyDtype dtype) { return dtype != NpyDtype::f32 && dtype != NpyDtype::f64; }

std::string npy_shape_text(std::span<const int64_t> shape) {
    if (shape.size() == 1) return fmt::format("({},)", shape[0]);
    return fmt::format("({})", fmt::join(shape, ", "));
}

NpyHeader parse_npy(std::span<const std::byte> file, std::string_view name) {
    constexpr size_t kVersionEnd = kMagic.size() + 2;
    if (file.size() < kMagic.size() || !std::equal(kMagic.begin(), kMagic.end(), file.begin(),
                                                   [](unsigned char a, std::byte b) { return std::byte{a} == b; })) {
        const auto start = file.first(std::min(file.size(), kMagic.size()));
        fail(name, fmt::format("bad magic \"{}\" ({} bytes in the file); expected an NPY file starting "
                               "\"\\x93NUMPY\"",
                               printable(start), file.size()));
    }
    if (file.size() < kVersionEnd) {
        fail(name, fmt::format("truncated preamble: {} bytes; expected a 2-byte version after the magic", file.size()));
    }
    const auto major = std::to_integer<unsigned>(file[kMagic.size()]);
    const auto minor = std::to_integer<unsigned>(file[kMagic.size() + 1]);
    if (major < 1 || major > 3 || minor != 0) {
        fail(name, fmt::format("unsupported NPY version {}.{}; expected 1.0, 2.0 or 3.0", major, minor));
    }
    const size_t length_bytes = major == 1 ? 2 : 4;
    if (file.size() < kVersionEnd + length_bytes) {
        fail(name, fmt::format("truncated preamble: {} bytes; expected {} for version {}.0", file.size(),
                               kVersionEnd + length_bytes, major));
    }
    const uint64_t header_bytes = little_endian(file.subspan(kVersionEnd, length_bytes));
    const uint64_t header_begin = kVersionEnd + length_bytes;
    if (header_bytes > file.size() - header_begin) {
        fail(name, fmt::format("header length {} runs past the end of the file ({} bytes follow the preamble); the "
                               "file is truncated",
                               header_bytes, file.size() - header_begin));
    }
    const std::string_view text(reinterpret_cast<const char*>(file.data() + header_begin),
                                static_cast<size_t>(header_bytes));

    std::optional<PyValue> descr, fortran_order, shape;
    for (auto& [key, value] : DictParser(text, name).parse()) {
        std::optional<PyValue>* slot = key == "descr"           ? &descr
                                       : key == "fortran_order" ? &fortran_order
                                       : key == "shape"         ? &shape
                                                                : nullptr;
        if (slot == nullptr) {
            fail(name, fmt::format("header has an unknown key '{}'; expected only 'descr', 'fortran_order' and "
                                   "'shape'",
                                   key));
        }
        if (slot->has_value()) fail(name, fmt::format("header has the key '{}' twice; expected it once", key));
        *slot = std::move(value);
    }
    for (const auto& [slot, key] : {std::pair{&descr, "descr"}, {&fortran_order, "fortran_order"}, {&shape, "shape"}}) {
        if (!slot->has_value()) {
            fail(name, fmt::format("header has no '{}'; expected 'descr', 'fortran_order' and 'shape' as in {}", key,
                                   kExampleHeader));
        }
    }
    if (descr->kind != PyValue::Kind::string) fail(name, "header's 'descr' is not a string; expected e.g. '<f4'");
    if (fortran_order->kind != PyValue::Kind::boolean) {
        fail(name, "header's 'fortran_order' is not True or False; expected False");
    }
    if (shape->kind != PyValue::Kind::tuple) fail(name, "header's 'shape' is not a tuple; expected e.g. (3, 4)");

    NpyHeader header;
    const auto dtype = dtype_for(descr->text);
    if (!dtype) {
        fail(name, fmt::format("unsupported dtype '{}'; expected one of {}", descr->text, supported_descrs()));
    }
    header.dtype = *dtype;
    if (fortran_order->flag) {
        fail(name,
             "Fortran-order (column-major) data is not supported; expected fortran_order False (save "
             "np.ascontiguousarray(a) instead)");
    }
    header.shape = std::move(shape->items);

    const auto bytes = data_bytes(header.dtype, header.shape);
    if (!bytes) {
        fail(name, fmt::format("shape {} of {} is too large; expected at most 2^62 bytes of data",
                               npy_shape_text(header.shape), descr->text));
    }
    header.data_bytes = *bytes;
    header.elements = static_cast<int64_t>(header.data_bytes / npy_item_size(header.dtype));
    header.data_offset = header_begin + header_bytes;
    const uint64_t found = file.size() - header.data_offset;
    if (found < header.data_bytes) {
        fail(name, fmt::format("truncated data: shape {} of {} needs {} bytes after the header, found {}",
                               npy_shape_text(header.shape), descr->text, header.data_bytes, found));
    }
    if (found > header.data_bytes) {
        fail(name, fmt::format("trailing bytes: shape {} of {} needs exactly {} bytes after the header, found {}",
                               npy_shape_text(header.shape), descr->text, header.data_bytes, found));
    }
    return header;
}

// ---------------------------------------------------------------- NpyArray

NpyArray::NpyArray(const std::string& path)
    : file_(path, kKind),
      header_(parse_npy(file_.bytes(), path)),
      data_(file_.bytes().subspan(static_cast<size_t>(header_.data_offset), static_cast<size_t>(header_.data_bytes))) {}

double NpyArray::as_double(int64_t index) const {
    const std::byte* at = data_.data() + static_cast<size_t>(index) * npy_item_size(header_.dtype);
    switch (header_.dtype) {
        case NpyDtype::f32:
            return load<float>(at);
        case NpyDtype::f64:
            return load<double>(at);
        default:
            return static_cast<double>(as_int64(index));
    }
}

int64_t NpyArray::as_int64(int64_t index) const {
    const std::byte* at = data_.data() + static_cast<size_t>(index) * npy_item_size(header_.dtype);
    switch (header_.dtype) {
        case NpyDtype::u8:
        case NpyDtype::b1:
            return std::to_integer<int64_t>(*at);
        case NpyDtype::i32:
            return load<int32_t>(at);
        case NpyDtype::i64:
            return load<int64_t>(at);
        case NpyDtype::f32:
        case NpyDtype::f64:
            break;
    }
    throw Error(fmt::format("{} {}: integer read from {} data (an engine bug: callers check npy_is_integer)", kKind,
                            path(), npy_descr(header_.dtype)));
}

void NpyArray::copy_to_float(int64_t first, int64_t count, float* destination, float scale) const {
    const std::byte* source = data_.data() + static_cast<size_t>(first) * npy_item_size(header_.dtype);
    switch (header_.dtype) {
        case NpyDtype::u8:
        case NpyDtype::b1:
            convert<uint8_t>(source, count, destination, scale);
            break;
        case NpyDtype::i32:
            convert<int32_t>(source, count, destination, scale);
            break;
        case NpyDtype::i64:
            convert<int64_t>(source, count, destination, scale);
            break;
        case NpyDtype::f32:
            convert<float>(source, count, destination, scale);
            break;
        case NpyDtype::f64:
            convert<double>(source, count, destination, scale);
            break;
    }
}

// ---------------------------------------------------------------- writing

std::vector<std::byte> npy_header_bytes(NpyDtype dtype, const std::vector<int64_t>& shape) {
    // As numpy's _write_array_header: keys in sorted order, each followed by
    // ", ", then room for the first dimension to grow, then spaces and a
    // newline up to a multiple of 64 bytes in all.
    std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", npy_descr(dtype),
                                   npy_shape_text(shape));
    if (!shape.empty()) {
        const size_t digits = fmt::formatted_size("{}", shape[0]);
        dict.append(kGrowthAxisMaxDigits - std::min(digits, kGrowthAxisMaxDigits), ' ');
    }
    // Version 1.0 holds a header up to 65535 bytes; 2.0 anything longer.
    size_t length_bytes = 2;
    auto padded = [&] {
        const size_t unpadded = kMagic.size() + 2 + length_bytes + dict.size() + 1;
        return dict.size() + (kArrayAlignment - unpadded % kArrayAlignment) % kArrayAlignment + 1;
    };
    if (padded() > 0xffff) length_bytes = 4;
    const size_t header_bytes = padded();

    std::vector<std::byte> bytes;
    for (const unsigned char c : kMagic) bytes.push_back(std::byte{c});
    bytes.push_back(std::byte{static_cast<unsigned char>(length_bytes == 2 ? 1 : 2)});
    bytes.push_back(std::byte{0});
    for (size_t i = 0; i < length_bytes; ++i) bytes.push_back(static_cast<std::byte>((header_bytes >> (8 * i)) & 0xff));
    for (const char c : dict) bytes.push_back(static_cast<std::byte>(c));
    bytes.resize(bytes.size() + header_bytes - dict.size() - 1, std::byte{' '});
    bytes.push_back(std::byte{'\n'});
    return bytes;
}

void write_npy(const std::string& path, NpyDtype dtype, const std::vector<int64_t>& shape, const void* data) {
    if (std::any_of(shape.begin(), shape.end(), [](int64_t dim) { return dim < 0; })) {
        fail(path, fmt::format("cannot write shape {}; expected non-negative dimensions", npy_shape_text(shape)));
    }
    const auto bytes = data_bytes(dtype, shape);
    if (!bytes) fail(path, fmt::format("cannot write shape {}: too large", npy_shape_text(shape)));
    if (*bytes > 0 && data == nullptr) fail(path, "cannot write: no data; expected a pointer to the elements");
    io::AtomicFileWriter file(path, kKind);
    file.write(npy_header_bytes(dtype, shape));
    file.write(data, static_cast<size_t>(*bytes));
    file.commit();
}

}  // namespace ladon::data
