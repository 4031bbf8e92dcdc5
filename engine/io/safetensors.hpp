#pragma once
// safetensors files (https://github.com/huggingface/safetensors), the format
// of ladon's checkpoints:
//
//   8 bytes    N, little-endian unsigned: the header's length
//   N bytes    JSON object: {"__metadata__": {string: string},
//              "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
//              padded with spaces to a multiple of 8 bytes
//   the rest   the data buffer: every tensor's bytes, little-endian, C order;
//              offsets are relative to the buffer's start, and the tensors
//              cover the buffer exactly (no gaps, no overlaps, nothing after)
//
// The reader checks all of that and says in its errors which file, which
// tensor and what was expected.
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ladon::io {

// Every dtype the format defines, so that any valid file can be read and
// listed; the typed accessors below read F32, I64 and U8.
enum class SafetensorsDtype : uint8_t {
    boolean,
    u8,
    i8,
    u16,
    i16,
    u32,
    i32,
    u64,
    i64,
    f8_e4m3,
    f8_e5m2,
    f16,
    bf16,
    f32,
    f64
};
std::string_view dtype_name(SafetensorsDtype dtype);  // as in the header: "F32", "BOOL", ...
size_t dtype_size(SafetensorsDtype dtype);            // bytes per element

using SafetensorsMetadata = std::map<std::string, std::string>;  // written in key order

// A tensor to write: a view of the caller's memory, which must hold
// product(shape) * dtype_size(dtype) bytes in C order.
struct TensorToWrite {
    std::string name;
    SafetensorsDtype dtype = SafetensorsDtype::f32;
    std::vector<int64_t> shape;
    const void* data = nullptr;

    static TensorToWrite f32(std::string name, std::vector<int64_t> shape, const float* data);
    static TensorToWrite i64(std::string name, std::vector<int64_t> shape, const int64_t* data);
    static TensorToWrite u8(std::string name, std::vector<int64_t> shape, const uint8_t* data);
};

// The first 8 + N bytes of the file: the length and the space-padded JSON
// header. Tensors are laid out in the order given (the header lists them in
// that order after "__metadata__", which is left out when empty), so the same
// arguments give the same bytes. Throws ladon::Error on a duplicate or
// reserved name, a negative dimension, or a string that is not UTF-8.
std::vector<std::byte> safetensors_header(std::span<const TensorToWrite> tensors, const SafetensorsMetadata& metadata);

// Writes the header and then each tensor's bytes, atomically (see
// engine/io/atomic_file.hpp): on failure the previous file at `path` is left
// as it was and no temporary file remains. `kind` names the file in errors.
void write_safetensors_atomically(const std::string& path, std::span<const TensorToWrite> tensors,
                                  const SafetensorsMetadata& metadata, std::string_view kind = "safetensors file");

// A tensor read from a file; `bytes` points into its SafetensorsFile.
struct SafetensorsTensor {
    std::string name;
    SafetensorsDtype dtype = SafetensorsDtype::f32;
    std::vector<int64_t> shape;
    std::span<const std::byte> bytes;

    int64_t elements() const;
};

class SafetensorsFile {
public:
    SafetensorsFile(SafetensorsFile&&) = default;  // the buffer moves, the tensors' spans stay valid
    SafetensorsFile& operator=(SafetensorsFile&&) = default;
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;

    // "<kind> <path>", the prefix of every error about this file.
    const std::string& source() const { return source_; }
    const SafetensorsMetadata& metadata() const { return metadata_; }
    // In data-offset order, which for files this engine writes is the order
    // they were written in.
    const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }

    const SafetensorsTensor* find(std::string_view name) const;
    // Throws "<source>: no tensor 'name'; the file has N tensors: a, b, ...".
    const SafetensorsTensor& tensor(std::string_view name) const;

    // Copies tensor `name` out after checking its dtype and its shape against
    // `expected_shape`; throws e.g. "checkpoint run/ck.safetensors: tensor
    // 'trunk.0.weight' has shape [32, 1, 3, 3], expected [16, 1, 3, 3]".
    std::vector<float> f32(std::string_view name, const std::vector<int64_t>& expected_shape) const;
    std::vector<int64_t> i64(std::string_view name, const std::vector<int64_t>& expected_shape) const;
    std::vector<uint8_t> u8(std::string_view name, const std::vector<int64_t>& expected_shape) const;
    // f32 into caller memory (a view into a flat parameter buffer), which
    // must hold product(expected_shape) floats.
    void copy_f32(std::string_view name, const std::vector<int64_t>& expected_shape, float* destination) const;

private:
    friend SafetensorsFile parse_safetensors(std::span<const std::byte>, std::string_view, std::string_view);
    SafetensorsFile() = default;
    const SafetensorsTensor& checked(std::string_view name, SafetensorsDtype dtype,
                                     const std::vector<int64_t>& expected_shape) const;

    std::string source_;
    SafetensorsMetadata metadata_;
    std::vector<SafetensorsTensor> tensors_;
    std::vector<std::byte> buffer_;  // the file's data buffer
};

// Parses a whole file's bytes (copied; the span may die afterwards). Every
// error is a ladon::Error starting "<kind> <name>: ". Duplicate keys in the
// JSON header, which a JSON object would silently merge, are errors too.
SafetensorsFile parse_safetensors(std::span<const std::byte> file, std::string_view name,
                                  std::string_view kind = "safetensors file");

// Maps the file and parses it; also an error when the file is missing or
// unreadable.
SafetensorsFile read_safetensors(const std::string& path, std::string_view kind = "safetensors file");

}  // namespace ladon::io
