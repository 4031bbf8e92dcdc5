// max_pool2d and avg_pool2d, forward and backward. Windows are clipped to the
// input: for max pooling the padding acts as -inf, for average pooling as
// zeros counted in the divisor (kernel_height * kernel_width always, PyTorch's
// count_include_pad=True).
//
// Parallel decomposition, all four kernels: one task per [H, W] plane
// (sample x channel). A plane's outputs and its input gradient belong to the
// task alone, and within it windows are visited in a fixed order, so backward's
// overlapping windows add up the same way whatever the thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/ops.hpp"

namespace ladon::cpu {
namespace {

// Below this many input elements a pass runs on one thread.
constexpr int64_t parallel_threshold = 1 << 15;

void validate(const char* op, const Pool2dShape& s) {
    const bool positive = s.batch >= 0 && s.channels >= 0 && s.in_height > 0 && s.in_width > 0 && s.kernel_height > 0 &&
                          s.kernel_width > 0 && s.stride_height > 0 && s.stride_width > 0 && s.pad_height >= 0 &&
                          s.pad_width >= 0;
    if (!positive || s.out_height() < 1 || s.out_width() < 1)
        throw std::invalid_argument(std::string(op) +
                                    ": invalid shape (expected positive sizes and strides, non-negative padding, "
                                    "and a kernel that fits the padded input)");
    // max pooling stores argmax as an int32 index within a plane.
    if (s.in_height * s.in_width > std::numeric_limits<int32_t>::max())
        throw std::invalid_argument(std::string(op) + ": in_height * in_width = " +
                                    std::to_string(s.in_height * s.in_width) + " exceeds the int32 argmax range");
}

// The input rows or columns [begin, end) a window starting at `start` covers,
// clipped to [0, size). Empty only if the window lies wholly in the padding.
struct Window {
    int64_t begin;
    int64_t end;
};

inline Window clip(int64_t start, int64_t kernel, int64_t size) {
    return {std::max<int64_t>(start, 0), std::min(start + kernel, size)};
}

// Calls visit(plane_index, rows, cols, output_offset) for every output of
// every plane, planes split across threads.
template <typename Visit>
void for_each_window(const Pool2dShape& s, Visit visit) {
    const int64_t planes = s.batch * s.channels;
    const int64_t out_height = s.out_height(), out_width = s.out_width();
#pragma omp parallel for schedule(static) if (s.input_size() >= parallel_threshold)
    for (int64_t plane = 0; plane < planes; ++plane) {
        for (int64_t oh = 0; oh < out_height; ++oh) {
            const Window rows = clip(oh * s.stride_height - s.pad_height, s.kernel_height, s.in_height);
            for (int64_t ow = 0; ow < out_width; ++ow) {
                const Window cols = clip(ow * s.stride_width - s.pad_width, s.kernel_width, s.in_width);
                visit(plane, rows, cols, (plane * out_height + oh) * out_width + ow);
            }
        }
    }
}

// Whether every window lies wholly inside the input and windows do not
// overlap: no padding and kernel == stride (a 2x2 stride-2 pool, the common
// case). Then no window needs clipping, and the windows of one output row read
// `kernel_height` input rows left to right, contiguously.
bool windows_tile_the_input(const Pool2dShape& s) {
    return s.pad_height == 0 && s.pad_width == 0 && s.kernel_height == s.stride_height &&
           s.kernel_width == s.stride_width;
}

// The general path's comparison: a larger value or a NaN takes the place of
// the current best (so of several NaNs the last one wins). Written as selects
// so the compiler can keep it branch-free.
inline void take_if_larger_or_nan(float value, int32_t index, float& best, int32_t& best_index) {
    const bool take = value > best || std::isnan(value);
    best = take ? value : best;
    best_index = take ? index : best_index;
}

// One output row of a 2x2 stride-2 pool: `top` is input row 2 * oh, the row
// below it follows at +in_width. The taps are compared in row-major order, as
// in the general path; starting from the first tap rather than from -inf gives
// the same result, since nothing but a NaN or a larger value replaces it.
inline void max_pool_2x2_row(const float* top, int64_t in_width, int32_t top_index, int64_t out_width, float* output,
                             int32_t* argmax) {
    const float* bottom = top + in_width;
    const int32_t below = static_cast<int32_t>(in_width);
    for (int64_t ow = 0; ow < out_width; ++ow) {
        const int32_t first = top_index + static_cast<int32_t>(2 * ow);
        float best = top[2 * ow];
        int32_t best_index = first;
        take_if_larger_or_nan(top[2 * ow + 1], first + 1, best, best_index);
        take_if_larger_or_nan(bottom[2 * ow], first + below, best, best_index);
        take_if_larger_or_nan(bottom[2 * ow + 1], first + below + 1, best, best_index);
        output[ow] = best;
        argmax[ow] = best_index;
    }
}

// One output row for any kernel == stride: the window of output ow covers
// columns [ow * kernel_width, (ow + 1) * kernel_width) of `kernel_height` rows.
inline void max_pool_tiled_row(const Pool2dShape& s, const float* top, int32_t top_index, int64_t out_width,
                               float* output, int32_t* argmax) {
    for (int64_t ow = 0; ow < out_width; ++ow) {
        const int64_t first = ow * s.kernel_width;
        float best = top[first];
        int32_t best_index = top_index + static_cast<int32_t>(first);
        for (int64_t kh = 0; kh < s.kernel_height; ++kh) {
            const float* row = top + kh * s.in_width + first;
            const int32_t row_index = top_index + static_cast<int32_t>(kh * s.in_width + first);
            for (int64_t kw = kh == 0 ? 1 : 0; kw < s.kernel_width; ++kw)
                take_if_larger_or_nan(row[kw], row_index + static_cast<int32_t>(kw), best, best_index);
        }
        output[ow] = best;
        argmax[ow] = best_index;
    }
}

void max_pool2d_forward_tiled(const Pool2dShape& s, const float* input, float* output, int32_t* argmax) {
    const int64_t planes = s.batch * s.channels;
    const int64_t plane_size = s.in_height * s.in_width;
    const int64_t out_height = s.out_height(), out_width = s.out_width();
    const bool two_by_two = s.kernel_height == 2 && s.kernel_width == 2;
#pragma omp parallel for schedule(static) if (s.input_size() >= parallel_threshold)
    for (int64_t plane = 0; plane < planes; ++plane) {
        const float* in = input + plane * plane_size;
        for (int64_t oh = 0; oh < out_height; ++oh) {
            const int64_t top = oh * s.kernel_height * s.in_width;
            const int64_t o = (plane * out_height + oh) * out_width;
            if (two_by_two)
                max_pool_2x2_row(in + top, s.in_width, static_cast<int32_t>(top), out_width, output + o, argmax + o);
            else
                max_pool_tiled_row(s, in + top, static_cast<int32_t>(top), out_width, output + o, argmax + o);
        }
    }
}

}  // namespace

// Ties go to the first maximum in row-major order; a NaN wins over any number
// (as PyTorch), so a diverged activation is not silently hidden. A window
// wholly in the padding yields -inf with argmax -1, which backward skips.
void max_pool2d_forward(const Pool2dShape& shape, const float* input, float* output, int32_t* argmax) {
    validate("max_pool2d_forward", shape);
    if (windows_tile_the_input(shape)) {
        max_pool2d_forward_tiled(shape, input, output, argmax);
        return;
    }
    const int64_t plane_size = shape.in_height * shape.in_width;
    for_each_window(shape, [&](int64_t plane, Window rows, Window cols, int64_t o) {
        const float* in = input + plane * plane_size;
        float best = -std::numeric_limits<float>::infinity();
        int64_t best_index =
            rows.begin < rows.end && cols.begin < cols.end ? rows.begin * shape.in_width + cols.begin : -1;
        for (int64_t h = rows.begin; h < rows.end; ++h) {
            for (int64_t w = cols.begin; w < cols.end; ++w) {
                const float v = in[h * shape.in_width + w];
                if (v > best || std::isnan(v)) {
                    best = v;
                    best_index = h * shape.in_width + w;
                }
            }
        }
        output[o] = best;
        argmax[o] = static_cast<int32_t>(best_index);
    });
}

void max_pool2d_backward(const Pool2dShape& shape, const float* grad_output, const int32_t* argmax, float* grad_input) {
    validate("max_pool2d_backward", shape);
    const int64_t planes = shape.batch * shape.channels;
    const int64_t plane_size = shape.in_height * shape.in_width;
    const int64_t outputs_per_plane = shape.out_height() * shape.out_width();
#pragma omp parallel for schedule(static) if (shape.input_size() >= parallel_threshold)
    for (int64_t plane = 0; plane < planes; ++plane) {
        float* grad_in = grad_input + plane * plane_size;
        const int64_t first = plane * outputs_per_plane;
        for (int64_t o = first; o < first + outputs_per_plane; ++o)
            if (argmax[o] >= 0) grad_in[argmax[o]] += grad_output[o];
    }
}

void avg_pool2d_forward(const Pool2dShape& shape, const float* input, float* output) {
    validate("avg_pool2d_forward", shape);
    const int64_t plane_size = shape.in_height * shape.in_width;
    const float area = static_cast<float>(shape.kernel_height * shape.kernel_width);
    for_each_window(shape, [&](int64_t plane, Window rows, Window cols, int64_t o) {
        const float* in = input + plane * plane_size;
        float sum = 0.0f;
        for (int64_t h = rows.begin; h < rows.end; ++h)
            for (int64_t w = cols.begin; w < cols.end; ++w) sum += in[h * shape.in_width + w];
        output[o] = sum / area;
    });
}

void avg_pool2d_backward(const Pool2dShape& shape, const float* grad_output, float* grad_input) {
    validate("avg_pool2d_backward", shape);
    const int64_t plane_size = shape.in_height * shape.in_width;
    const float area = static_cast<float>(shape.kernel_height * shape.kernel_width);
    for_each_window(shape, [&](int64_t plane, Window rows, Window cols, int64_t o) {
        float* grad_in = grad_input + plane * plane_size;
        const float g = grad_output[o] / area;
        for (int64_t h = rows.begin; h < rows.end; ++h)
            for (int64_t w = cols.begin; w < cols.end; ++w) grad_in[h * shape.in_width + w] += g;
    });
}

}  // namespace ladon::cpu
