// libFuzzer: parse_npy on arbitrary bytes must either return a header that
// accounts for every byte of the input or throw ladon::Error; the header
// write_npy would write for that dtype and shape must parse back the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "engine/data/npy.hpp"
#include "ladon/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace ladon::data;
    const std::span input(reinterpret_cast<const std::byte*>(data), size);
    NpyHeader header;
    try {
        header = parse_npy(input, "fuzz input");
    } catch (const ladon::Error&) {
        return 0;
    }
    if (header.data_offset + header.data_bytes != size) std::abort();
    if (static_cast<uint64_t>(header.elements) * npy_item_size(header.dtype) != header.data_bytes) std::abort();

    try {
        std::vector<std::byte> rewritten = npy_header_bytes(header.dtype, header.shape);
        rewritten.insert(rewritten.end(), input.begin() + static_cast<std::ptrdiff_t>(header.data_offset), input.end());
        const NpyHeader again = parse_npy(rewritten, "round trip");
        if (again.dtype != header.dtype || again.shape != header.shape || again.data_bytes != header.data_bytes) {
            std::abort();
        }
    } catch (const ladon::Error&) {
        std::abort();  // what the reader accepts, the writer must write
    }
    return 0;
}
