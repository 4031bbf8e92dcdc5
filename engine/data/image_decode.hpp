#pragma once
// Decoding JPEG and PNG files into 8-bit pixels, for datasets of photos
// (issue 16). The format is told by the file's first bytes, not its name:
//
//   JPEG  FF D8 FF                   through TurboJPEG (libjpeg-turbo)
//   PNG   89 50 4E 47 0D 0A 1A 0A    through libpng
//
// Every image comes out with the channel count the caller asks for, whatever
// the file holds:
//   - grey → RGB replicates the grey value;
//   - RGB → grey is the BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B, rounded
//     (for a colour JPEG: its own Y plane, the same weights);
//   - alpha is composited onto white, out = (c·a + 255·(255 − a)) / 255
//     rounded, so transparent backgrounds of product photos come out white;
//   - palette PNGs are expanded (their tRNS transparency is alpha as above),
//     1/2/4-bit grey is scaled to 0..255, 16-bit samples are rounded to 8
//     bits (round(v · 255 / 65535));
//   - CMYK and YCCK JPEGs (print workflows) use R = C·K / 255 etc. on the
//     inverted (Adobe) values libjpeg returns: no colour management.
// No gamma or ICC correction is applied: the samples are taken as stored.
//
// Every failure is a ladon::Error whose message is one line starting
// "image <name>: " (name_for_errors) and saying what was wrong and what was
// expected. The header's size is checked against DecodeOptions::max_pixels
// before any pixel memory is allocated. A JPEG that decodes with a libjpeg
// warning (truncated data, corrupt entropy-coded segments) is refused: the
// decoder would otherwise fill the missing part with grey.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ladon::data {

// Height × width × channels, row-major, 8 bits per sample (HWC).
struct Image {
    int width = 0;
    int height = 0;
    int channels = 0;  // 1 (grey) or 3 (RGB)
    std::vector<uint8_t> pixels;

    uint8_t at(int row, int column, int channel) const {
        return pixels[(static_cast<size_t>(row) * static_cast<size_t>(width) + static_cast<size_t>(column)) *
                          static_cast<size_t>(channels) +
                      static_cast<size_t>(channel)];
    }
};

struct DecodeOptions {
    int channels = 3;  // 1 = grey, 3 = RGB
    // When > 0, a JPEG is decoded at the smallest of TurboJPEG's DCT scaling
    // factors (k/8, k = 1..8) whose shorter side is still >= this hint: far
    // cheaper than decoding the full size and resizing. 0, or a hint the file
    // is smaller than, decodes at full size; PNGs are always full size.
    int min_side_hint = 0;
    // A file whose header claims more pixels (width × height, before any DCT
    // scaling) is refused before anything is allocated.
    int64_t max_pixels = int64_t{100} * 1000 * 1000;
};

enum class ImageFormat : uint8_t { unknown, jpeg, png };

// The format the first bytes announce.
ImageFormat detect_image_format(std::span<const uint8_t> bytes);

// Decodes a JPEG or PNG held in memory.
Image decode_image(std::span<const uint8_t> bytes, const std::string& name_for_errors,
                   const DecodeOptions& options = {});
// Maps the file at `path` (engine/io/mapped_file.hpp) and decodes it; errors
// name `path`.
Image decode_image_file(const std::string& path, const DecodeOptions& options = {});

// The two formats on their own, for callers that already know the format.
// They check their magic bytes too.
Image decode_jpeg(std::span<const uint8_t> bytes, const std::string& name_for_errors, const DecodeOptions& options);
Image decode_png(std::span<const uint8_t> bytes, const std::string& name_for_errors, const DecodeOptions& options);

// Throws the error decode_image gives unless options.channels is 1 or 3, the
// header's width and height are both >= 1 and their product is at most
// options.max_pixels. The decoders call it before allocating any pixels.
void check_decode_request(int64_t width, int64_t height, const std::string& name_for_errors,
                          const DecodeOptions& options);

// The channel conversions described above, from 1 (grey), 2 (grey + alpha),
// 3 (RGB) or 4 (RGBA) interleaved samples to 1 or 3.
std::vector<uint8_t> convert_channels(std::span<const uint8_t> pixels, int from_channels, int to_channels);

}  // namespace ladon::data
