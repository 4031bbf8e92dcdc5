#pragma once
// NPY files (numpy's np.save format), read through a read-only memory mapping
// so that arrays larger than memory work:
//
//   6 bytes   magic "\x93NUMPY"
//   2 bytes   version major, minor: 1.0, 2.0 or 3.0
//   2 or 4    header length H, little-endian (2 bytes in 1.0, 4 in 2.0/3.0)
//   H bytes   a Python dict literal, padded with spaces and a newline:
//             {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
//   the rest  the data, C order, exactly product(shape) * item size bytes
//
// The reader checks all of that and says in its errors which file and what was
// expected.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/mapped_file.hpp"

namespace ladon::data {

// The dtypes ladon reads, with their descr strings.
enum class NpyDtype : uint8_t {
    u8,   // '|u1'
    b1,   // '|b1' (numpy bool: one byte, 0 or 1)
    i32,  // '<i4'
    i64,  // '<i8'
    f32,  // '<f4'
    f64,  // '<f8'
};
std::string_view npy_descr(NpyDtype dtype);
size_t npy_item_size(NpyDtype dtype);
bool npy_is_integer(NpyDtype dtype);  // u8, b1, i32, i64

struct NpyHeader {
    NpyDtype dtype = NpyDtype::f32;
    std::vector<int64_t> shape;
    int64_t elements = 1;      // product(shape)
    uint64_t data_offset = 0;  // from the start of the file
    uint64_t data_bytes = 0;   // elements * item size
};

// Parses and checks the header of a whole file's bytes, including that the
// data after it is exactly as long as the shape says. Errors are ladon::Error
// starting "NPY file <name>: ".
NpyHeader parse_npy(std::span<const std::byte> file, std::string_view name);

// "(3, 4)", "(3,)", "()": a shape as numpy prints it.
std::string npy_shape_text(std::span<const int64_t> shape);

// A mapped, checked NPY file. Reads are const and touch only the mapping, so
// one array may be read from many threads at once.
class NpyArray {
public:
    explicit NpyArray(const std::string& path);

    const std::string& path() const { return file_.path(); }
    NpyDtype dtype() const { return header_.dtype; }
    const std::vector<int64_t>& shape() const { return header_.shape; }
    int64_t elements() const { return header_.elements; }
    // The raw elements, little-endian, C order; not necessarily aligned to
    // the item size (numpy aligns the data to 64 bytes, other writers may not).
    std::span<const std::byte> data() const { return data_; }

    // Element `index` (flat, 0 <= index < elements()) converted to double or,
    // for integer dtypes, to int64.
    double as_double(int64_t index) const;
    int64_t as_int64(int64_t index) const;
    // Elements [first, first + count) converted to float and multiplied by
    // `scale`.
    void copy_to_float(int64_t first, int64_t count, float* destination, float scale = 1.0f) const;

private:
    io::MappedFile file_;
    NpyHeader header_;
    std::span<const std::byte> data_;
};

// Writes a C-order array as NPY version 1.0 (2.0 if the header needs it),
// with the header numpy's own np.save writes for the same array, atomically
// (engine/io/atomic_file.hpp). `data` holds product(shape) elements.
void write_npy(const std::string& path, NpyDtype dtype, const std::vector<int64_t>& shape, const void* data);
inline void write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
    write_npy(path, NpyDtype::f32, shape, data);
}
// The preamble and header write_npy writes (the file minus its data).
std::vector<std::byte> npy_header_bytes(NpyDtype dtype, const std::vector<int64_t>& shape);

}  // namespace ladon::data
