#pragma once
// The tight box of a set of pixels, in the box-task convention: x is the
// column, y the row, and x1/y1 lie one past the last pixel.
#include <algorithm>
#include <cstdint>
#include <limits>

namespace ladon::data {

struct TightBox {
    int64_t x0 = std::numeric_limits<int64_t>::max();
    int64_t y0 = std::numeric_limits<int64_t>::max();
    int64_t x1 = 0;
    int64_t y1 = 0;

    void add(int64_t row, int64_t col) {
        x0 = std::min(x0, col);
        y0 = std::min(y0, row);
        x1 = std::max(x1, col + 1);
        y1 = std::max(y1, row + 1);
    }
    bool empty() const { return x1 == 0; }

    // Writes (x0, y0, x1, y1) shifted by (left, top) and divided by `extent`.
    void write(float* box, int64_t left, int64_t top, int64_t extent) const {
        const auto scale = static_cast<float>(extent);
        box[0] = static_cast<float>(left + x0) / scale;
        box[1] = static_cast<float>(top + y0) / scale;
        box[2] = static_cast<float>(left + x1) / scale;
        box[3] = static_cast<float>(top + y1) / scale;
    }
};

}  // namespace ladon::data
