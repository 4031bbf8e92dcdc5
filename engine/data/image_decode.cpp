// Format detection, the size check and the channel conversions shared by the
// JPEG (image_jpeg.cpp) and PNG (image_png.cpp) decoders.
#include "engine/data/image_decode.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstddef>

#include "engine/io/mapped_file.hpp"
#include "ladon/error.hpp"

namespace ladon::data {
namespace {

constexpr std::array<uint8_t, 3> kJpegMagic = {0xFF, 0xD8, 0xFF};
constexpr std::array<uint8_t, 8> kPngMagic = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
constexpr std::string_view kSupported = "expected a JPEG (starting FF D8 FF) or PNG (starting 89 50 4E 47 0D 0A 1A 0A)";

template <size_t N>
bool starts_with(std::span<const uint8_t> bytes, const std::array<uint8_t, N>& magic) {
    return bytes.size() >= N && std::equal(magic.begin(), magic.end(), bytes.begin());
}

// BT.601 luma weights in 16-bit fixed point; they sum to 65536, so grey
// pixels (R = G = B) keep their value exactly.
constexpr uint32_t kLumaRed = 19595;    // 0.299 · 65536
constexpr uint32_t kLumaGreen = 38470;  // 0.587 · 65536
constexpr uint32_t kLumaBlue = 7471;    // 0.114 · 65536
static_assert(kLumaRed + kLumaGreen + kLumaBlue == 65536);

uint8_t luma(uint32_t red, uint32_t green, uint32_t blue) {
    return static_cast<uint8_t>((kLumaRed * red + kLumaGreen * green + kLumaBlue * blue + 32768) >> 16);
}

// `value` seen through `alpha` over a white background, rounded.
uint8_t over_white(uint32_t value, uint32_t alpha) {
    return static_cast<uint8_t>((value * alpha + 255 * (255 - alpha) + 127) / 255);
}

}  // namespace

ImageFormat detect_image_format(std::span<const uint8_t> bytes) {
    if (starts_with(bytes, kJpegMagic)) return ImageFormat::jpeg;
    if (starts_with(bytes, kPngMagic)) return ImageFormat::png;
    return ImageFormat::unknown;
}

void check_decode_request(int64_t width, int64_t height, const std::string& name_for_errors,
                          const DecodeOptions& options) {
    if (options.channels != 1 && options.channels != 3) {
        throw Error(fmt::format("image {}: asked for {} channels; expected 1 (grey) or 3 (RGB)", name_for_errors,
                                options.channels));
    }
    if (width < 1 || height < 1) {
        throw Error(fmt::format("image {}: the header says {}x{} pixels; expected a width and height of at least 1",
                                name_for_errors, width, height));
    }
    // Both are below 2^32 (32-bit header fields), so the product fits.
    if (width * height > options.max_pixels) {
        throw Error(
            fmt::format("image {}: the header says {}x{} = {} pixels; expected at most {} (DecodeOptions::max_pixels)",
                        name_for_errors, width, height, width * height, options.max_pixels));
    }
}

Image decode_image(std::span<const uint8_t> bytes, const std::string& name_for_errors, const DecodeOptions& options) {
    if (bytes.empty()) throw Error(fmt::format("image {}: empty file (0 bytes); {}", name_for_errors, kSupported));
    switch (detect_image_format(bytes)) {
        case ImageFormat::jpeg:
            return decode_jpeg(bytes, name_for_errors, options);
        case ImageFormat::png:
            return decode_png(bytes, name_for_errors, options);
        case ImageFormat::unknown:
            break;
    }
    std::string first_bytes;
    for (size_t i = 0; i < std::min<size_t>(bytes.size(), 8); ++i) {
        first_bytes += fmt::format("{}{:02X}", i == 0 ? "" : " ", bytes[i]);
    }
    throw Error(
        fmt::format("image {}: unsupported format (first bytes {}); {}", name_for_errors, first_bytes, kSupported));
}

Image decode_image_file(const std::string& path, const DecodeOptions& options) {
    const io::MappedFile file(path, "image");
    const std::span<const std::byte> bytes = file.bytes();
    return decode_image({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, path, options);
}

std::vector<uint8_t> convert_channels(std::span<const uint8_t> pixels, int from_channels, int to_channels) {
    if (from_channels < 1 || from_channels > 4 || (to_channels != 1 && to_channels != 3)) {
        throw Error(fmt::format("convert_channels: from {} to {} channels; expected from 1..4 to 1 or 3", from_channels,
                                to_channels));
    }
    const auto from = static_cast<size_t>(from_channels);
    const auto to = static_cast<size_t>(to_channels);
    if (from == to) return {pixels.begin(), pixels.end()};
    const size_t count = pixels.size() / from;
    std::vector<uint8_t> converted(count * to);
    const bool has_alpha = from == 2 || from == 4;
    for (size_t i = 0; i < count; ++i) {
        const uint8_t* source = pixels.data() + i * from;
        uint8_t* destination = converted.data() + i * to;
        const uint32_t alpha = has_alpha ? source[from - 1] : 255;
        if (from <= 2) {  // grey, grey + alpha
            const uint8_t grey = over_white(source[0], alpha);
            std::fill_n(destination, to, grey);
            continue;
        }
        const uint8_t red = over_white(source[0], alpha);
        const uint8_t green = over_white(source[1], alpha);
        const uint8_t blue = over_white(source[2], alpha);
        if (to == 1) {
            destination[0] = luma(red, green, blue);
        } else {
            destination[0] = red;
            destination[1] = green;
            destination[2] = blue;
        }
    }
    return converted;
}

}  // namespace ladon::data
