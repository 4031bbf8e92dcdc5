// Image decoding (engine/data/image_decode.hpp): JPEGs and PNGs made here with
// TurboJPEG's compressor and libpng's writer, from Fashion-MNIST pixels where
// the package is installed and from gradients otherwise, decoded back. PNGs
// must come back exactly; JPEGs at quality 95 within a few levels. Every kind
// of bad file must give one ladon::Error naming the file and the problem, and
// an oversized header must be refused before its pixels are allocated.
#include <gtest/gtest.h>
#include <png.h>
#include <turbojpeg.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <csetjmp>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include "cpu/image_test_support.hpp"
#include "engine/data/image_decode.hpp"
#include "ladon/dataset.hpp"
#include "ladon/error.hpp"
#include "test_data_files.hpp"

// The largest single operator new since the last reset: shows that a header
// claiming 20000x20000 pixels is refused before the 1.2 GB buffer exists.
// Not under a sanitizer, whose runtime owns operator new.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define LADON_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define LADON_SANITIZED 1
#endif

namespace {
std::atomic<size_t> largest_allocation{0};
}  // namespace

#ifndef LADON_SANITIZED
// g++ sees the free() below inlined into callers of delete, whose memory came
// from this new, i.e. from malloc: a match it cannot tell.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(size_t bytes) {
    size_t seen = largest_allocation.load(std::memory_order_relaxed);
    while (bytes > seen && !largest_allocation.compare_exchange_weak(seen, bytes, std::memory_order_relaxed)) {
    }
    if (void* memory = std::malloc(bytes == 0 ? 1 : bytes)) return memory;
    throw std::bad_alloc();
}
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, size_t /*bytes*/) noexcept { std::free(memory); }
#endif

namespace ladon {
namespace {

using namespace image_test;  // NOLINT: the helpers are this file's vocabulary

// ---------------------------------------------------------------- PNG

TEST(ImageDecodePng, GreyRoundTripsExactlyAndReplicatesToRgb) {
    int width = 0;
    int height = 0;
    const std::vector<uint8_t> grey = photo_like_grey(width, height);
    const std::vector<uint8_t> file = encode_png(png_8bit(width, height, PNG_COLOR_TYPE_GRAY, grey));

    const Image as_grey = decode_image(file, "grey.png", with_channels(1));
    EXPECT_EQ(as_grey.width, width);
    EXPECT_EQ(as_grey.height, height);
    EXPECT_EQ(as_grey.channels, 1);
    EXPECT_EQ(as_grey.pixels, grey);

    const Image as_rgb = decode_image(file, "grey.png", with_channels(3));
    ASSERT_EQ(as_rgb.pixels.size(), grey.size() * 3);
    for (size_t i = 0; i < grey.size(); ++i) {
        for (size_t c = 0; c < 3; ++c) ASSERT_EQ(as_rgb.pixels[3 * i + c], grey[i]) << "pixel " << i;
    }
}

TEST(ImageDecodePng, RgbRoundTripsExactly) {
    const std::vector<uint8_t> rgb = gradient(37, 23, 3);
    const Image image = decode_image(encode_png(png_8bit(37, 23, PNG_COLOR_TYPE_RGB, rgb)), "rgb.png");
    EXPECT_EQ(image.width, 37);
    EXPECT_EQ(image.height, 23);
    EXPECT_EQ(image.channels, 3);
    EXPECT_EQ(image.pixels, rgb);
}

TEST(ImageDecodePng, InterlacedDecodesLikePlain) {
    PngSpec spec = png_8bit(19, 13, PNG_COLOR_TYPE_RGB, gradient(19, 13, 3));
    spec.interlaced = true;
    EXPECT_EQ(decode_image(encode_png(spec), "adam7.png").pixels, spec.samples);
}

TEST(ImageDecodePng, RgbToGreyUsesBt601Luma) {
    // Pure red, green, blue, white, black, a grey, then a gradient.
    std::vector<uint8_t> rgb = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 77, 77, 77};
    const std::vector<uint8_t> ramp = gradient(16, 1, 3);
    rgb.insert(rgb.end(), ramp.begin(), ramp.end());
    const int width = static_cast<int>(rgb.size() / 3);
    const Image image =
        decode_image(encode_png(png_8bit(width, 1, PNG_COLOR_TYPE_RGB, rgb)), "luma.png", with_channels(1));
    ASSERT_EQ(image.pixels.size(), static_cast<size_t>(width));
    // round(0.299 * 255) = 76, round(0.587 * 255) = 150, round(0.114 * 255) = 29
    EXPECT_EQ(image.pixels[0], 76);
    EXPECT_EQ(image.pixels[1], 150);
    EXPECT_EQ(image.pixels[2], 29);
    EXPECT_EQ(image.pixels[3], 255);
    EXPECT_EQ(image.pixels[4], 0);
    EXPECT_EQ(image.pixels[5], 77);
    for (int i = 6; i < width; ++i) {
        const double luma = 0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2];
        EXPECT_NEAR(image.pixels[i], luma, 0.51) << "pixel " << i;
    }
}

TEST(ImageDecodePng, RgbaIsCompositedOnWhite) {
    // Black and a colour at alpha 0, 128 and 255, then a gradient with a
    // gradient alpha.
    std::vector<uint8_t> rgba = {0, 0, 0, 0, 0, 0, 0, 128, 0, 0, 0, 255, 200, 100, 50, 128};
    const std::vector<uint8_t> ramp = gradient(20, 1, 4);
    rgba.insert(rgba.end(), ramp.begin(), ramp.end());
    const int width = static_cast<int>(rgba.size() / 4);
    const std::vector<uint8_t> file = encode_png(png_8bit(width, 1, PNG_COLOR_TYPE_RGBA, rgba));

    const Image rgb = decode_image(file, "rgba.png", with_channels(3));
    EXPECT_EQ(rgb.pixels[0], 255);  // transparent: white
    EXPECT_EQ(rgb.pixels[3], 127);  // black at 128/255 over white: 127.0
    EXPECT_EQ(rgb.pixels[6], 0);    // opaque black
    for (int i = 0; i < width; ++i) {
        for (int c = 0; c < 3; ++c) {
            ASSERT_EQ(rgb.pixels[3 * i + c], over_white(rgba[4 * i + c], rgba[4 * i + 3])) << "pixel " << i;
        }
    }
    // Grey: the luma of the composited colour.
    const Image grey = decode_image(file, "rgba.png", with_channels(1));
    for (int i = 0; i < width; ++i) {
        const double luma = 0.299 * rgb.pixels[3 * i] + 0.587 * rgb.pixels[3 * i + 1] + 0.114 * rgb.pixels[3 * i + 2];
        EXPECT_NEAR(grey.pixels[i], luma, 0.51) << "pixel " << i;
    }
}

TEST(ImageDecodePng, GreyAlphaIsCompositedOnWhite) {
    const std::vector<uint8_t> grey_alpha = {0, 0, 0, 255, 100, 51, 255, 0, 30, 200};
    const Image image =
        decode_image(encode_png(png_8bit(5, 1, PNG_COLOR_TYPE_GRAY_ALPHA, grey_alpha)), "ga.png", with_channels(1));
    EXPECT_EQ(image.pixels, (std::vector<uint8_t>{255, 0, over_white(100, 51), 255, over_white(30, 200)}));
}

TEST(ImageDecodePng, PaletteExpandsWithItsTransparency) {
    PngSpec spec{4, 2, PNG_COLOR_TYPE_PALETTE, 8, {0, 1, 2, 3, 3, 2, 1, 0}, {}, {}};
    spec.palette = {{10, 20, 30}, {255, 0, 0}, {0, 128, 255}, {90, 90, 90}};
    spec.palette_alpha = {0, 255, 128};  // entry 3 has none: opaque
    const Image image = decode_image(encode_png(spec), "palette.png", with_channels(3));
    ASSERT_EQ(image.pixels.size(), 4u * 2 * 3);
    const std::vector<uint8_t> entry0 = {255, 255, 255};  // fully transparent
    const std::vector<uint8_t> entry1 = {255, 0, 0};
    const std::vector<uint8_t> entry2 = {over_white(0, 128), over_white(128, 128), over_white(255, 128)};
    const std::vector<uint8_t> entry3 = {90, 90, 90};
    const std::vector<std::vector<uint8_t>> expected_row0 = {entry0, entry1, entry2, entry3};
    for (int x = 0; x < 4; ++x) {
        for (int c = 0; c < 3; ++c) {
            EXPECT_EQ(image.at(0, x, c), expected_row0[x][c]) << "x " << x;
            EXPECT_EQ(image.at(1, 3 - x, c), expected_row0[x][c]) << "x " << 3 - x;
        }
    }
}

TEST(ImageDecodePng, SixteenBitSamplesRoundTo8Bits) {
    // Every 257th value and its neighbours: round(v * 255 / 65535) = round(v /
    // 257), where truncating (v >> 8) would be one lower for v = 255, 511, ...
    std::vector<uint16_t> values;
    for (uint32_t v = 0; v <= 65535; v += 257) {
        for (uint32_t near : {v, v + 128, v + 129, v + 255}) {
            if (near <= 65535) values.push_back(static_cast<uint16_t>(near));
        }
    }
    while (values.size() % 3 != 0) values.push_back(65535);
    const int width = static_cast<int>(values.size() / 3);
    std::vector<uint8_t> big_endian;
    for (const uint16_t v : values) {
        big_endian.push_back(static_cast<uint8_t>(v >> 8));
        big_endian.push_back(static_cast<uint8_t>(v & 0xff));
    }
    const Image rgb = decode_image(encode_png(PngSpec{width, 1, PNG_COLOR_TYPE_RGB, 16, big_endian, {}, {}}),
                                   "deep.png", with_channels(3));
    ASSERT_EQ(rgb.pixels.size(), values.size());
    for (size_t i = 0; i < values.size(); ++i) {
        ASSERT_EQ(rgb.pixels[i], std::lround(values[i] / 257.0)) << "16-bit value " << values[i];
    }

    // 16-bit grey the same way.
    const std::vector<uint8_t> grey16 = {0x00, 0xFF, 0x80, 0x80, 0xFF, 0xFF};  // 255, 32896, 65535
    const Image grey = decode_image(encode_png(PngSpec{3, 1, PNG_COLOR_TYPE_GRAY, 16, grey16, {}, {}}), "deep-grey.png",
                                    with_channels(1));
    EXPECT_EQ(grey.pixels, (std::vector<uint8_t>{1, 128, 255}));
}

TEST(ImageDecodePng, OneBitGreyScalesTo0And255) {
    // 10 pixels 1 0 1 1 0 0 0 1 | 1 0, packed MSB first into two bytes.
    const Image image =
        decode_image(encode_png(PngSpec{10, 1, PNG_COLOR_TYPE_GRAY, 1, {0b10110001, 0b10000000}, {}, {}}), "bits.png",
                     with_channels(1));
    EXPECT_EQ(image.pixels, (std::vector<uint8_t>{255, 0, 255, 255, 0, 0, 0, 255, 255, 0}));
}

// ---------------------------------------------------------------- JPEG

TEST(ImageDecodeJpeg, RgbAtQuality95IsWithinAFewLevels) {
    const std::vector<uint8_t> rgb = gradient(64, 48, 3);
    const Image image = decode_image(encode_jpeg(rgb, 64, 48, TJPF_RGB, TJSAMP_444), "gradient.jpg");
    EXPECT_EQ(image.width, 64);
    EXPECT_EQ(image.height, 48);
    EXPECT_EQ(image.channels, 3);
    EXPECT_LT(mean_absolute_error(image.pixels, rgb), 1.0);
    EXPECT_LE(max_absolute_error(image.pixels, rgb), 6);
}

TEST(ImageDecodeJpeg, GreyPhotoIsWithinAFewLevelsAndReplicatesToRgb) {
    int width = 0;
    int height = 0;
    const std::vector<uint8_t> grey = photo_like_grey(width, height);
    const std::vector<uint8_t> file = encode_jpeg(grey, width, height, TJPF_GRAY, TJSAMP_GRAY);

    const Image as_grey = decode_image(file, "fashion.jpg", with_channels(1));
    EXPECT_EQ(as_grey.channels, 1);
    EXPECT_LT(mean_absolute_error(as_grey.pixels, grey), 2.0);
    EXPECT_LE(max_absolute_error(as_grey.pixels, grey), 24);  // sharp edges ring a little

    const Image as_rgb = decode_image(file, "fashion.jpg", with_channels(3));
    ASSERT_EQ(as_rgb.pixels.size(), as_grey.pixels.size() * 3);
    for (size_t i = 0; i < as_grey.pixels.size(); ++i) {
        for (size_t c = 0; c < 3; ++c) ASSERT_EQ(as_rgb.pixels[3 * i + c], as_grey.pixels[i]) << "pixel " << i;
    }
}

TEST(ImageDecodeJpeg, ColourToGreyIsTheLuma) {
    const std::vector<uint8_t> rgb = gradient(40, 30, 3);
    const std::vector<uint8_t> file = encode_jpeg(rgb, 40, 30, TJPF_RGB, TJSAMP_420);
    const Image colour = decode_image(file, "colour.jpg", with_channels(3));
    const Image grey = decode_image(file, "colour.jpg", with_channels(1));
    ASSERT_EQ(grey.pixels.size(), 40u * 30);
    std::vector<uint8_t> luma(grey.pixels.size());
    for (size_t i = 0; i < luma.size(); ++i) {
        luma[i] = static_cast<uint8_t>(std::lround(0.299 * colour.pixels[3 * i] + 0.587 * colour.pixels[3 * i + 1] +
                                                   0.114 * colour.pixels[3 * i + 2]));
    }
    EXPECT_LE(max_absolute_error(grey.pixels, luma), 2);  // Y before vs after the colour conversion's rounding
}

TEST(ImageDecodeJpeg, DctScalingDecodesTheSmallestScaleAboveTheHint) {
    const std::vector<uint8_t> rgb = gradient(800, 600, 3);
    const std::vector<uint8_t> file = encode_jpeg(rgb, 800, 600, TJPF_RGB, TJSAMP_420, 90);
    const auto size_for = [&](int hint) {
        DecodeOptions options;
        options.min_side_hint = hint;
        const Image image = decode_image(file, "large.jpg", options);
        EXPECT_EQ(image.pixels.size(), static_cast<size_t>(image.width) * image.height * 3);
        return std::pair{image.width, image.height};
    };
    EXPECT_EQ(size_for(0), std::pair(800, 600));     // no hint: full size
    EXPECT_EQ(size_for(150), std::pair(200, 150));   // 2/8: 150 is exactly enough
    EXPECT_EQ(size_for(151), std::pair(300, 225));   // 3/8
    EXPECT_EQ(size_for(1), std::pair(100, 75));      // 1/8, the smallest factor
    EXPECT_EQ(size_for(600), std::pair(800, 600));   // 8/8
    EXPECT_EQ(size_for(5000), std::pair(800, 600));  // smaller than the hint already: never enlarged

    // The reduced image shows the same picture: its mean is the full one's.
    DecodeOptions eighth;
    eighth.min_side_hint = 75;
    const Image small = decode_image(file, "large.jpg", eighth);
    const Image full = decode_image(file, "large.jpg");
    const auto mean = [](const std::vector<uint8_t>& pixels) {
        double sum = 0;
        for (const uint8_t p : pixels) sum += p;
        return sum / static_cast<double>(pixels.size());
    };
    EXPECT_NEAR(mean(small.pixels), mean(full.pixels), 1.0);
}

TEST(ImageDecodeJpeg, CmykUsesInvertedInkTimesBlack) {
    // TurboJPEG stores CMYK as YCCK; decoding gives back the CMYK values, which
    // are read as Adobe's inverted ink: R = C·K / 255.
    const std::vector<uint8_t> cmyk = gradient(32, 16, 4);
    const Image image = decode_image(encode_jpeg(cmyk, 32, 16, TJPF_CMYK, TJSAMP_444), "print.jpg", with_channels(3));
    std::vector<uint8_t> expected(32 * 16 * 3);
    for (size_t i = 0; i < 32 * 16; ++i) {
        for (size_t c = 0; c < 3; ++c)
            expected[3 * i + c] = static_cast<uint8_t>(cmyk[4 * i + c] * cmyk[4 * i + 3] / 255);
    }
    EXPECT_LT(mean_absolute_error(image.pixels, expected), 1.5);
    EXPECT_LE(max_absolute_error(image.pixels, expected), 8);
}

// ---------------------------------------------------------------- sizes

TEST(ImageDecode, OnePixelImagesDecode) {
    const Image png = decode_image(encode_png(png_8bit(1, 1, PNG_COLOR_TYPE_RGB, {10, 200, 30})), "dot.png");
    EXPECT_EQ(png.width, 1);
    EXPECT_EQ(png.height, 1);
    EXPECT_EQ(png.pixels, (std::vector<uint8_t>{10, 200, 30}));

    const Image jpeg = decode_image(encode_jpeg({10, 200, 30}, 1, 1, TJPF_RGB, TJSAMP_444), "dot.jpg");
    EXPECT_EQ(jpeg.width, 1);
    EXPECT_EQ(jpeg.height, 1);
    ASSERT_EQ(jpeg.pixels.size(), 3u);
    EXPECT_NEAR(jpeg.pixels[0], 10, 4);
    EXPECT_NEAR(jpeg.pixels[1], 200, 4);
    EXPECT_NEAR(jpeg.pixels[2], 30, 4);
}

TEST(ImageDecode, MaxPixelsIsInclusive) {
    const std::vector<uint8_t> png = encode_png(png_8bit(5, 2, PNG_COLOR_TYPE_GRAY, gradient(5, 2, 1)));
    const std::vector<uint8_t> jpeg = encode_jpeg(gradient(5, 2, 1), 5, 2, TJPF_GRAY, TJSAMP_GRAY);
    DecodeOptions ten;
    ten.max_pixels = 10;
    EXPECT_EQ(decode_image(png, "ten.png", ten).pixels.size(), 10u * 3);
    EXPECT_EQ(decode_image(jpeg, "ten.jpg", ten).pixels.size(), 10u * 3);
    DecodeOptions nine;
    nine.max_pixels = 9;
    EXPECT_NE(error_of([&] { decode_image(png, "ten.png", nine); }).find("5x2 = 10 pixels; expected at most 9"),
              std::string::npos);
    EXPECT_NE(error_of([&] { decode_image(jpeg, "ten.jpg", nine); }).find("5x2 = 10 pixels; expected at most 9"),
              std::string::npos);
}

TEST(ImageDecode, HugePngHeaderIsRefusedBeforeAllocating) {
    const std::vector<uint8_t> file = png_claiming(20000, 20000);
    largest_allocation = 0;
    const std::string message = error_of([&] { decode_image(file, "shelf/huge.png"); });
    EXPECT_EQ(message,
              "image shelf/huge.png: the header says 20000x20000 = 400000000 pixels; expected at most 100000000 "
              "(DecodeOptions::max_pixels)");
#ifndef LADON_SANITIZED
    EXPECT_LT(largest_allocation.load(), size_t{1} << 20);
#endif
}

TEST(ImageDecode, HugeJpegHeaderIsRefusedBeforeAllocating) {
    std::vector<uint8_t> file = encode_jpeg(gradient(16, 16, 3), 16, 16, TJPF_RGB, TJSAMP_444);
    // The baseline frame header: FF C0, length (2), precision (1), height, width.
    constexpr std::array<uint8_t, 2> kStartOfFrame = {0xFF, 0xC0};
    const auto sof = std::search(file.begin(), file.end(), kStartOfFrame.begin(), kStartOfFrame.end());
    ASSERT_NE(sof, file.end());
    const size_t at = static_cast<size_t>(sof - file.begin());
    for (const size_t field : {at + 5, at + 7}) {  // 20000 = 0x4E20
        file[field] = 0x4E;
        file[field + 1] = 0x20;
    }
    largest_allocation = 0;
    const std::string message = error_of([&] { decode_image(file, "shelf/huge.jpg"); });
    EXPECT_NE(message.find("image shelf/huge.jpg: the header says 20000x20000 = 400000000 pixels"), std::string::npos)
        << message;
#ifndef LADON_SANITIZED
    EXPECT_LT(largest_allocation.load(), size_t{1} << 20);
#endif
}

TEST(ImageDecode, ZeroByZeroHeaderIsRefused) {
    const std::string message = error_of([&] { decode_image(png_claiming(0, 0), "blank.png"); });
    EXPECT_EQ(message, "image blank.png: the header says 0x0 pixels; expected a width and height of at least 1");
}

// ---------------------------------------------------------------- bad files

TEST(ImageDecode, EmptyFileIsRefused) {
    const std::string message = error_of([] { decode_image({}, "photos/empty.jpg"); });
    EXPECT_NE(message.find("image photos/empty.jpg: empty file (0 bytes)"), std::string::npos) << message;
}

TEST(ImageDecode, TruncatedJpegIsRefused) {
    std::vector<uint8_t> file = encode_jpeg(gradient(64, 64, 3), 64, 64, TJPF_RGB, TJSAMP_420);
    file.resize(file.size() / 2);
    const std::string message = error_of([&] { decode_image(file, "photos/cut.jpg"); });
    EXPECT_NE(message.find("image photos/cut.jpg: truncated or corrupt JPEG data"), std::string::npos) << message;
}

TEST(ImageDecode, JpegCutInsideItsHeaderIsRefused) {
    std::vector<uint8_t> file = encode_jpeg(gradient(8, 8, 3), 8, 8, TJPF_RGB, TJSAMP_444);
    file.resize(40);
    const std::string message = error_of([&] { decode_image(file, "photos/stub.jpg"); });
    EXPECT_NE(message.find("image photos/stub.jpg: bad JPEG header"), std::string::npos) << message;
}

TEST(ImageDecode, PngWithABadCrcIsRefused) {
    std::vector<uint8_t> file = encode_png(png_8bit(16, 16, PNG_COLOR_TYPE_RGB, gradient(16, 16, 3)));
    const size_t idat = png_chunk(file, "IDAT");
    const uint32_t length = (uint32_t{file[idat]} << 24) | (uint32_t{file[idat + 1]} << 16) |
                            (uint32_t{file[idat + 2]} << 8) | file[idat + 3];
    file[idat + 8 + length + 3] ^= 0x01;  // the last byte of IDAT's CRC
    const std::string message = error_of([&] { decode_image(file, "photos/crc.png"); });
    EXPECT_NE(message.find("image photos/crc.png: corrupt or truncated PNG (IDAT: CRC error)"), std::string::npos)
        << message;
}

TEST(ImageDecode, TruncatedPngIsRefused) {
    std::vector<uint8_t> file = encode_png(png_8bit(32, 32, PNG_COLOR_TYPE_RGB, gradient(32, 32, 3)));
    file.resize(file.size() / 2);
    const std::string message = error_of([&] { decode_image(file, "photos/cut.png"); });
    EXPECT_NE(message.find("image photos/cut.png: corrupt or truncated PNG (unexpected end of file)"),
              std::string::npos)
        << message;
}

TEST(ImageDecode, UnknownFormatNamesTheSupportedOnes) {
    const std::vector<uint8_t> file = {'G', 'I', 'F', '8', '9', 'a', 0x01, 0x00, 0x01, 0x00};
    const std::string message = error_of([&] { decode_image(file, "photos/anim.gif"); });
    EXPECT_EQ(message,
              "image photos/anim.gif: unsupported format (first bytes 47 49 46 38 39 61 01 00); expected a JPEG "
              "(starting FF D8 FF) or PNG (starting 89 50 4E 47 0D 0A 1A 0A)");
}

TEST(ImageDecode, ChannelsOtherThanOneOrThreeAreRefused) {
    const std::vector<uint8_t> png = encode_png(png_8bit(1, 1, PNG_COLOR_TYPE_GRAY, {1}));
    EXPECT_EQ(error_of([&] { decode_image(png, "dot.png", with_channels(4)); }),
              "image dot.png: asked for 4 channels; expected 1 (grey) or 3 (RGB)");
    const std::vector<uint8_t> jpeg = encode_jpeg({1}, 1, 1, TJPF_GRAY, TJSAMP_GRAY);
    EXPECT_EQ(error_of([&] { data::decode_jpeg(jpeg, "dot.jpg", with_channels(2)); }),
              "image dot.jpg: asked for 2 channels; expected 1 (grey) or 3 (RGB)");
}

TEST(ImageDecode, FilesAreReadByPath) {
    const test::TempDir directory;
    const std::vector<uint8_t> rgb = gradient(9, 7, 3);
    const std::string path = directory.file("shoe.png");
    test::write_plain(path, encode_png(png_8bit(9, 7, PNG_COLOR_TYPE_RGB, rgb)));
    EXPECT_EQ(data::decode_image_file(path).pixels, rgb);

    const std::string empty = directory.file("empty.jpg");
    test::write_plain(empty, {});
    EXPECT_NE(error_of([&] { data::decode_image_file(empty); }).find("image " + empty + ": empty file"),
              std::string::npos);
    const std::string missing = directory.file("missing.jpg");
    EXPECT_NE(error_of([&] { data::decode_image_file(missing); }).find("image " + missing + ": cannot open"),
              std::string::npos);
}

}  // namespace
}  // namespace ladon
