// libFuzzer: parse_safetensors on arbitrary bytes must either return a file
// or throw ladon::Error; a file it returns must write back (header + data)
// to bytes that parse to the same file.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "engine/io/safetensors.hpp"
#include "ladon/error.hpp"

namespace {

using ladon::io::SafetensorsFile;

bool same(const SafetensorsFile& a, const SafetensorsFile& b) {
    if (a.metadata() != b.metadata() || a.tensors().size() != b.tensors().size()) return false;
    for (size_t i = 0; i < a.tensors().size(); ++i) {
        const auto& x = a.tensors()[i];
        const auto& y = b.tensors()[i];
        if (x.name != y.name || x.dtype != y.dtype || x.shape != y.shape || x.bytes.size() != y.bytes.size() ||
            (!x.bytes.empty() && std::memcmp(x.bytes.data(), y.bytes.data(), x.bytes.size()) != 0)) {
            return false;
        }
    }
    return true;
}

void round_trip(const SafetensorsFile& file) {
    std::vector<ladon::io::TensorToWrite> tensors;
    for (const auto& tensor : file.tensors()) {
        tensors.push_back({tensor.name, tensor.dtype, tensor.shape, tensor.bytes.data()});
    }
    try {
        std::vector<std::byte> bytes = ladon::io::safetensors_header(tensors, file.metadata());
        for (const auto& tensor : file.tensors()) bytes.insert(bytes.end(), tensor.bytes.begin(), tensor.bytes.end());
        if (!same(file, ladon::io::parse_safetensors(bytes, "round trip"))) std::abort();
    } catch (const ladon::Error&) {
        std::abort();  // what the reader accepts, the writer must write
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const SafetensorsFile file =
            ladon::io::parse_safetensors(std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz input");
        round_trip(file);
    } catch (const ladon::Error&) {
    }
    return 0;
}
