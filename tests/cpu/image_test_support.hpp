#pragma once
// Test images for the image-decoding tests (tests/cpu/test_images_decode.cpp):
// pixels (gradients, Fashion-MNIST tiles), JPEG and PNG encoders (TurboJPEG,
// libpng's writer), and checks on decoded pixels and crafted PNG headers.
#include <gtest/gtest.h>
#include <png.h>
#include <turbojpeg.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <csetjmp>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "engine/data/image_decode.hpp"
#include "ladon/dataset.hpp"
#include "ladon/error.hpp"

namespace ladon::image_test {

using data::decode_image;
using data::DecodeOptions;
using data::Image;

inline const std::string kFashionImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

// ---------------------------------------------------------------- pixels

// A smooth RGB(A) / grey gradient, different in each channel.
inline std::vector<uint8_t> gradient(int width, int height, int channels) {
    std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * channels);
    for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) {
            for (int c = 0; c < channels; ++c) {
                const int value =
                    (x * 255 / std::max(1, width - 1) * (c + 1) + y * 255 / std::max(1, height - 1)) / (c + 2);
                pixels[(static_cast<size_t>(y) * width + x) * channels + c] = static_cast<uint8_t>(value);
            }
        }
    }
    return pixels;
}

// The first four Fashion-MNIST test images tiled 2x2 (56x56 grey), or a
// gradient where the package is missing.
inline std::vector<uint8_t> photo_like_grey(int& width, int& height) {
    width = 56;
    height = 56;
    if (!std::filesystem::exists(kFashionImages)) return gradient(width, height, 1);
    const IdxArray images = read_idx(kFashionImages);
    std::vector<uint8_t> tiled(56 * 56);
    for (int tile = 0; tile < 4; ++tile) {
        for (int y = 0; y < 28; ++y) {
            for (int x = 0; x < 28; ++x) {
                tiled[(tile / 2 * 28 + y) * 56 + tile % 2 * 28 + x] = images.data[tile * 784 + y * 28 + x];
            }
        }
    }
    return tiled;
}

// ---------------------------------------------------------------- encoders

inline std::vector<uint8_t> encode_jpeg(const std::vector<uint8_t>& pixels, int width, int height, TJPF pixel_format,
                                 TJSAMP subsampling, int quality = 95) {
    tjhandle compressor = tjInitCompress();
    EXPECT_NE(compressor, nullptr);
    unsigned char* jpeg = nullptr;
    unsigned long jpeg_bytes = 0;
    const int status = tjCompress2(compressor, pixels.data(), width, 0, height, pixel_format, &jpeg, &jpeg_bytes,
                                   subsampling, quality, 0);
    EXPECT_EQ(status, 0) << tjGetErrorStr2(compressor);
    std::vector<uint8_t> bytes(jpeg, jpeg + jpeg_bytes);
    tjFree(jpeg);
    tjDestroy(compressor);
    return bytes;
}

// What a test PNG holds: samples as PNG stores them (16-bit big-endian,
// sub-byte depths packed), plus an optional palette and tRNS.
struct PngSpec {
    int width;
    int height;
    int color_type;
    int bit_depth;
    std::vector<uint8_t> samples;
    std::vector<png_color> palette;
    std::vector<uint8_t> palette_alpha;
    bool interlaced = false;
};

inline void append_to(png_structp png, png_bytep data, size_t length) {
    auto* bytes = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
    bytes->insert(bytes->end(), data, data + length);
}

// libpng's writer leaves by longjmp on error: no object with a destructor
// lives in this frame.
inline bool write_png_frame(png_structp png, png_infop info, const PngSpec* spec, png_bytepp rows) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_set_IHDR(png, info, spec->width, spec->height, spec->bit_depth, spec->color_type,
                 spec->interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (!spec->palette.empty()) png_set_PLTE(png, info, spec->palette.data(), static_cast<int>(spec->palette.size()));
    if (!spec->palette_alpha.empty()) {
        png_set_tRNS(png, info, spec->palette_alpha.data(), static_cast<int>(spec->palette_alpha.size()), nullptr);
    }
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, nullptr);
    return true;
}

inline std::vector<uint8_t> encode_png(const PngSpec& spec) {
    std::vector<uint8_t> bytes;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    png_set_write_fn(png, &bytes, append_to, nullptr);
    const size_t row_bytes = spec.samples.size() / static_cast<size_t>(spec.height);
    std::vector<png_bytep> rows(static_cast<size_t>(spec.height));
    for (size_t row = 0; row < rows.size(); ++row) {
        rows[row] = const_cast<png_bytep>(spec.samples.data()) + row * row_bytes;
    }
    EXPECT_TRUE(write_png_frame(png, info, &spec, rows.data()));
    png_destroy_write_struct(&png, &info);
    return bytes;
}

inline PngSpec png_8bit(int width, int height, int color_type, std::vector<uint8_t> samples) {
    return PngSpec{width, height, color_type, 8, std::move(samples), {}, {}};
}

// ---------------------------------------------------------------- checks

inline DecodeOptions with_channels(int channels) {
    DecodeOptions options;
    options.channels = channels;
    return options;
}

// The one ladon::Error `decode` throws; a test failure if it throws none.
inline std::string error_of(const std::function<void()>& decode) {
    try {
        decode();
    } catch (const Error& error) {
        const std::string message = error.what();
        EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
        return message;
    }
    ADD_FAILURE() << "no ladon::Error thrown";
    return "";
}

inline double mean_absolute_error(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    EXPECT_EQ(a.size(), b.size());
    double sum = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) sum += std::abs(int{a[i]} - int{b[i]});
    return sum / static_cast<double>(std::max<size_t>(1, a.size()));
}

inline int max_absolute_error(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    int largest = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
        largest = std::max(largest, std::abs(int{a[i]} - int{b[i]}));
    return largest;
}

inline uint8_t over_white(double value, double alpha) {
    return static_cast<uint8_t>(std::lround(value * alpha / 255.0 + (255.0 - alpha)));
}

// Writes `value` big-endian at `at`.
inline void put_u32(std::vector<uint8_t>& bytes, size_t at, uint32_t value) {
    for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<uint8_t>(value >> (24 - 8 * i));
}

// A PNG whose IHDR says width x height (with a correct CRC), followed by the
// image data of a real 1x1 PNG: only the header is wrong.
inline std::vector<uint8_t> png_claiming(uint32_t width, uint32_t height) {
    std::vector<uint8_t> bytes = encode_png(png_8bit(1, 1, PNG_COLOR_TYPE_GRAY, {7}));
    put_u32(bytes, 16, width);
    put_u32(bytes, 20, height);
    put_u32(bytes, 29, static_cast<uint32_t>(crc32(0, bytes.data() + 12, 4 + 13)));  // type + data
    return bytes;
}

// Offset of the first chunk of `type` in a PNG.
inline size_t png_chunk(const std::vector<uint8_t>& bytes, const std::string& type) {
    size_t at = 8;
    while (at + 8 <= bytes.size()) {
        const uint32_t length = (uint32_t{bytes[at]} << 24) | (uint32_t{bytes[at + 1]} << 16) |
                                (uint32_t{bytes[at + 2]} << 8) | bytes[at + 3];
        if (std::equal(type.begin(), type.end(), bytes.begin() + static_cast<std::ptrdiff_t>(at + 4))) return at;
        at += 12 + length;
    }
    ADD_FAILURE() << "no " << type << " chunk";
    return 0;
}

}  // namespace ladon::image_test
