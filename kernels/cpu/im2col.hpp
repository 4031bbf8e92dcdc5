#pragma once
// im2col / col2im for one sample of a conv2d. The column matrix is
// [K, P] row-major with K = in_channels * kernel_height * kernel_width (OIHW's
// inner order, so the weight is a plain [out_channels, K] matrix) and
// P = out_height * out_width (so a GEMM writes the NCHW output directly).
// Row r = (c * kernel_height + ki) * kernel_width + kj holds, for every output
// position, the input pixel that kernel tap (ki, kj) of channel c sees, or 0
// where the tap falls on padding.
#include <algorithm>
#include <cstdint>

#include "kernels/ops.hpp"

namespace ladon::cpu::detail {

// The output columns [begin, end) whose input column ow * stride - pad + tap
// lies inside [0, in_width); outside them the tap reads padding. Computed once
// per row so the inner loops carry no bounds checks.
struct ValidRange {
    int64_t begin;
    int64_t end;
};

inline ValidRange valid_outputs(int64_t tap, int64_t stride, int64_t pad, int64_t in_size, int64_t out_size) {
    // First o with o * stride - pad + tap >= 0, last o with it <= in_size - 1.
    int64_t first_input = pad - tap;
    int64_t begin = first_input <= 0 ? 0 : (first_input + stride - 1) / stride;
    int64_t last_input = in_size - 1 + pad - tap;
    int64_t end = last_input < 0 ? 0 : last_input / stride + 1;
    begin = std::min(begin, out_size);
    end = std::clamp(end, begin, out_size);
    return {begin, end};
}

// Fills rows [row_begin, row_end) of the column matrix from one sample's
// input [C, H, W]. Rows are independent, so callers may split them across threads.
inline void im2col(const ops::Conv2dShape& s, const float* image, float* columns, int64_t row_begin, int64_t row_end) {
    const int64_t out_height = s.out_height(), out_width = s.out_width();
    const int64_t positions = out_height * out_width;
    for (int64_t row = row_begin; row < row_end; ++row) {
        const int64_t kj = row % s.kernel_width;
        const int64_t ki = (row / s.kernel_width) % s.kernel_height;
        const int64_t c = row / (s.kernel_width * s.kernel_height);
        const float* plane = image + c * s.in_height * s.in_width;
        float* row_out = columns + row * positions;
        const ValidRange w = valid_outputs(kj, s.stride_width, s.pad_width, s.in_width, out_width);
        for (int64_t oh = 0; oh < out_height; ++oh) {
            float* out = row_out + oh * out_width;
            const int64_t ih = oh * s.stride_height - s.pad_height + ki;
            if (ih < 0 || ih >= s.in_height) {
                std::fill(out, out + out_width, 0.0f);
                continue;
            }
            std::fill(out, out + w.begin, 0.0f);
            std::fill(out + w.end, out + out_width, 0.0f);
            if (w.begin == w.end) continue;  // the pointer below would point past the plane
            const float* in = plane + ih * s.in_width + (w.begin * s.stride_width - s.pad_width + kj);
            if (s.stride_width == 1) {
                std::copy(in, in + (w.end - w.begin), out + w.begin);
            } else {
                for (int64_t ow = w.begin; ow < w.end; ++ow) out[ow] = in[(ow - w.begin) * s.stride_width];
            }
        }
    }
}

// Adds the column matrix back onto one sample's input gradient [C, H, W], for
// channels [channel_begin, channel_end). A channel's rows touch only its own
// plane, so callers may split channels across threads; within a plane the
// taps are added in a fixed order, so the result is deterministic.
inline void col2im_accumulate(const ops::Conv2dShape& s, const float* columns, float* image_gradient,
                              int64_t channel_begin, int64_t channel_end) {
    const int64_t out_height = s.out_height(), out_width = s.out_width();
    const int64_t positions = out_height * out_width;
    for (int64_t c = channel_begin; c < channel_end; ++c) {
        float* plane = image_gradient + c * s.in_height * s.in_width;
        for (int64_t ki = 0; ki < s.kernel_height; ++ki) {
            for (int64_t kj = 0; kj < s.kernel_width; ++kj) {
                const int64_t row = (c * s.kernel_height + ki) * s.kernel_width + kj;
                const float* row_in = columns + row * positions;
                const ValidRange w = valid_outputs(kj, s.stride_width, s.pad_width, s.in_width, out_width);
                if (w.begin == w.end) continue;
                for (int64_t oh = 0; oh < out_height; ++oh) {
                    const int64_t ih = oh * s.stride_height - s.pad_height + ki;
                    if (ih < 0 || ih >= s.in_height) continue;
                    const float* in = row_in + oh * out_width + w.begin;
                    float* out = plane + ih * s.in_width + (w.begin * s.stride_width - s.pad_width + kj);
                    const int64_t count = w.end - w.begin;
                    // Stride 1 gets its own loop: with a unit stride the compiler
                    // vectorises it (about 6x faster here); the strided one it cannot.
                    if (s.stride_width == 1) {
                        for (int64_t i = 0; i < count; ++i) out[i] += in[i];
                    } else {
                        for (int64_t i = 0; i < count; ++i) out[i * s.stride_width] += in[i];
                    }
                }
            }
        }
    }
}

}  // namespace ladon::cpu::detail
