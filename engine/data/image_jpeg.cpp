// JPEG decoding through the TurboJPEG API (libjpeg-turbo 2.x): header first,
// then the size check, then one tjDecompress2 into the final buffer, at a
// DCT scaling factor when DecodeOptions::min_side_hint allows one.
#include <fmt/format.h>
#include <turbojpeg.h>

#include <algorithm>
#include <memory>
#include <string_view>
#include <utility>

#include "engine/data/image_decode.hpp"
#include "ladon/error.hpp"

namespace ladon::data {
namespace {

constexpr std::string_view kExpected = "expected a complete baseline or progressive JPEG";

[[noreturn]] void fail(const std::string& name, std::string_view what) {
    throw Error(fmt::format("image {}: {}", name, what));
}

// tjhandle is a void*; tjDestroy frees it.
using Decompressor = std::unique_ptr<void, decltype(&tjDestroy)>;

// TurboJPEG keeps the last message per handle (libjpeg's own wording, e.g.
// "Premature end of JPEG file").
std::string last_message(tjhandle handle) { return tjGetErrorStr2(handle); }

// The smallest scaling factor <= 1 whose scaled shorter side is still >=
// `min_side`; 1/1 if there is none (the image is already smaller).
tjscalingfactor scaling_for(int width, int height, int min_side) {
    tjscalingfactor best{1, 1};
    if (min_side <= 0) return best;
    int count = 0;
    const tjscalingfactor* factors = tjGetScalingFactors(&count);
    for (int i = 0; factors != nullptr && i < count; ++i) {
        const tjscalingfactor factor = factors[i];
        if (factor.num > factor.denom) continue;  // enlarging: never useful here
        const int shorter = std::min(TJSCALED(width, factor), TJSCALED(height, factor));
        const bool smaller = factor.num * best.denom < best.num * factor.denom;
        if (shorter >= min_side && smaller) best = factor;
    }
    return best;
}

// Inverted (Adobe) CMYK as libjpeg returns it: 255 is no ink. R = C·K / 255
// and so on, rounded; no colour management.
std::vector<uint8_t> inverted_cmyk_to_rgb(const std::vector<uint8_t>& cmyk) {
    const size_t count = cmyk.size() / 4;
    std::vector<uint8_t> rgb(count * 3);
    for (size_t i = 0; i < count; ++i) {
        const uint32_t black = cmyk[4 * i + 3];
        for (size_t c = 0; c < 3; ++c) rgb[3 * i + c] = static_cast<uint8_t>((cmyk[4 * i + c] * black + 127) / 255);
    }
    return rgb;
}

}  // namespace

Image decode_jpeg(std::span<const uint8_t> bytes, const std::string& name_for_errors, const DecodeOptions& options) {
    if (detect_image_format(bytes) != ImageFormat::jpeg) fail(name_for_errors, "not a JPEG; expected FF D8 FF first");
    const Decompressor decompressor(tjInitDecompress(), &tjDestroy);
    if (!decompressor) fail(name_for_errors, "cannot start the JPEG decoder (" + last_message(nullptr) + ")");
    tjhandle handle = decompressor.get();

    int width = 0;
    int height = 0;
    int subsampling = 0;
    int colorspace = 0;
    if (tjDecompressHeader3(handle, bytes.data(), bytes.size(), &width, &height, &subsampling, &colorspace) != 0) {
        fail(name_for_errors, fmt::format("bad JPEG header ({}); {}", last_message(handle), kExpected));
    }
    // libjpeg takes a stream that ends before its frame header for a
    // tables-only stream, and TurboJPEG then reports success and a 0x0 size.
    if (width == 0 || height == 0) {
        fail(name_for_errors, fmt::format("bad JPEG header (no frame header: the file is cut short or holds only "
                                          "tables); {}",
                                          kExpected));
    }
    check_decode_request(width, height, name_for_errors, options);

    const tjscalingfactor scaling = scaling_for(width, height, options.min_side_hint);
    const int scaled_width = TJSCALED(width, scaling);
    const int scaled_height = TJSCALED(height, scaling);
    const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
    // libjpeg converts YCbCr to grey by keeping Y, which is BT.601 luma; CMYK
    // it cannot convert at all, so that is done here.
    const TJPF pixel_format = cmyk ? TJPF_CMYK : options.channels == 1 ? TJPF_GRAY : TJPF_RGB;
    const int decoded_channels = tjPixelSize[pixel_format];

    std::vector<uint8_t> pixels(static_cast<size_t>(scaled_width) * static_cast<size_t>(scaled_height) *
                                static_cast<size_t>(decoded_channels));
    // Stop at the first warning: libjpeg would fill the rest of a truncated
    // or corrupt image with grey and call it a success.
    const int flags = TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS;
    if (tjDecompress2(handle, bytes.data(), bytes.size(), pixels.data(), scaled_width, 0, scaled_height, pixel_format,
                      flags) != 0) {
        const bool warning = tjGetErrorCode(handle) == TJERR_WARNING;
        fail(name_for_errors,
             fmt::format("{} ({}); {}", warning ? "truncated or corrupt JPEG data" : "cannot decode the JPEG",
                         last_message(handle), kExpected));
    }

    Image image{scaled_width, scaled_height, options.channels, {}};
    if (cmyk) {
        image.pixels = convert_channels(inverted_cmyk_to_rgb(pixels), 3, options.channels);
    } else {
        image.pixels = std::move(pixels);
    }
    return image;
}

}  // namespace ladon::data
