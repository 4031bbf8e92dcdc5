// PNG decoding through libpng, from memory.
//
// libpng reports errors by longjmp to the last setjmp. A longjmp skips the
// destructors of everything in the frames it leaves, so the two functions
// that call setjmp (read_png_layout, read_png_rows) hold no object with a
// destructor, and every callback writes only into PngSource, plain data.
// The buffers live in decode_png, a frame that no longjmp leaves.
#include <fmt/format.h>
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/data/image_decode.hpp"
#include "ladon/error.hpp"

namespace ladon::data {
namespace {

constexpr std::string_view kExpected = "expected a complete, valid PNG";

[[noreturn]] void fail(const std::string& name, std::string_view what) {
    throw Error(fmt::format("image {}: {}", name, what));
}

// The file's bytes and libpng's last error message: what the callbacks see.
struct PngSource {
    const uint8_t* data;
    size_t size;
    size_t offset;
    char message[256];
};

void read_from_memory(png_structp png, png_bytep destination, size_t length) {
    auto* source = static_cast<PngSource*>(png_get_io_ptr(png));
    if (length > source->size - source->offset) png_error(png, "unexpected end of file");
    std::memcpy(destination, source->data + source->offset, length);
    source->offset += length;
}

[[noreturn]] void on_error(png_structp png, png_const_charp message) {
    auto* source = static_cast<PngSource*>(png_get_error_ptr(png));
    std::snprintf(source->message, sizeof source->message, "%s", message);
    png_longjmp(png, 1);
}

// Warnings are about ancillary chunks (a bad CRC in a text chunk, an odd
// colour profile), which libpng discards; the pixels are fine.
void on_warning(png_structp /*png*/, png_const_charp /*message*/) {}

// The rows as they will come out of libpng once its transforms are set.
struct PngLayout {
    uint32_t width;
    uint32_t height;
    int channels;  // 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA; 8 bits each
    size_t row_bytes;
};

// Reads the chunks up to the image data and sets the transforms that turn
// every colour type and bit depth into 8-bit grey, grey + alpha, RGB or RGBA.
// False when libpng failed (its message is in the PngSource).
bool read_png_layout(png_structp png, png_infop info, PngLayout* layout) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_read_info(png, info);
    const png_byte color_type = png_get_color_type(png, info);
    const png_byte bit_depth = png_get_bit_depth(png, info);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (bit_depth == 16) png_set_scale_16(png);  // rounds, where png_set_strip_16 truncates
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    layout->width = png_get_image_width(png, info);
    layout->height = png_get_image_height(png, info);
    layout->channels = png_get_channels(png, info);
    layout->row_bytes = png_get_rowbytes(png, info);
    return true;
}

// Decodes all rows, then reads the chunks after the image data (which checks
// their CRCs and that the file ends with IEND).
bool read_png_rows(png_structp png, png_bytepp rows) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_read_image(png, rows);
    png_read_end(png, nullptr);
    return true;
}

// Owns libpng's read and info structures.
class PngReader {
public:
    explicit PngReader(PngSource* source)
        : png_(png_create_read_struct(PNG_LIBPNG_VER_STRING, source, on_error, on_warning)) {
        if (png_ != nullptr) info_ = png_create_info_struct(png_);
        if (png_ != nullptr) png_set_read_fn(png_, source, read_from_memory);
    }
    ~PngReader() {
        if (png_ != nullptr) png_destroy_read_struct(&png_, info_ != nullptr ? &info_ : nullptr, nullptr);
    }
    PngReader(const PngReader&) = delete;
    PngReader& operator=(const PngReader&) = delete;

    bool ready() const { return png_ != nullptr && info_ != nullptr; }
    png_structp png() const { return png_; }
    png_infop info() const { return info_; }

private:
    png_structp png_ = nullptr;
    png_infop info_ = nullptr;
};

uint32_t big_endian_u32(const uint8_t* bytes) {
    return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) | uint32_t{bytes[3]};
}

}  // namespace

Image decode_png(std::span<const uint8_t> bytes, const std::string& name_for_errors, const DecodeOptions& options) {
    if (detect_image_format(bytes) != ImageFormat::png) {
        fail(name_for_errors, "not a PNG; expected 89 50 4E 47 0D 0A 1A 0A first");
    }
    // IHDR is the first chunk (signature, length, "IHDR", width, height): the
    // size is checked before libpng allocates anything, and a 0x0 header gets
    // this message rather than libpng's.
    constexpr size_t kIhdrSizeEnd = 24;
    if (bytes.size() >= kIhdrSizeEnd && std::memcmp(bytes.data() + 12, "IHDR", 4) == 0) {
        check_decode_request(big_endian_u32(bytes.data() + 16), big_endian_u32(bytes.data() + 20), name_for_errors,
                             options);
    }

    PngSource source{bytes.data(), bytes.size(), 0, {}};
    const PngReader reader(&source);
    if (!reader.ready()) fail(name_for_errors, "cannot start the PNG decoder (out of memory)");
    // The size check above governs, not libpng's default 1000000-pixel side.
    png_set_user_limits(reader.png(), PNG_UINT_31_MAX, PNG_UINT_31_MAX);

    PngLayout layout{};
    if (!read_png_layout(reader.png(), reader.info(), &layout)) {
        fail(name_for_errors, fmt::format("corrupt or truncated PNG ({}); {}", source.message, kExpected));
    }
    check_decode_request(layout.width, layout.height, name_for_errors, options);

    std::vector<uint8_t> pixels(layout.row_bytes * layout.height);
    std::vector<png_bytep> rows(layout.height);
    for (size_t row = 0; row < rows.size(); ++row) rows[row] = pixels.data() + row * layout.row_bytes;
    if (!read_png_rows(reader.png(), rows.data())) {
        fail(name_for_errors, fmt::format("corrupt or truncated PNG ({}); {}", source.message, kExpected));
    }
    Image image{static_cast<int>(layout.width), static_cast<int>(layout.height), options.channels, {}};
    image.pixels = layout.channels == options.channels ? std::move(pixels)
                                                       : convert_channels(pixels, layout.channels, options.channels);
    return image;
}

}  // namespace ladon::data
