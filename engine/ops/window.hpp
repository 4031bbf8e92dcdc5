#pragma once
// What conv2d and the pools share: the checks on a sliding window.
#include <fmt/format.h>

#include "engine/ops/op.hpp"

namespace ladon::engine {

struct Window {
    int64_t kernel_height, kernel_width, stride_height, stride_width, pad_height, pad_width;
};

// Fails unless the window is positive and fits its (padded) input; a pool's
// padding may be at most half its kernel, as PyTorch requires.
inline void check_window(const NodeInference& inference, const TensorShape& in, const Window& w, bool pool) {
    if (w.kernel_height <= 0 || w.kernel_width <= 0)
        inference.fail(fmt::format("needs a positive kernel, got {}x{}", w.kernel_height, w.kernel_width));
    if (w.stride_height <= 0 || w.stride_width <= 0)
        inference.fail(fmt::format("needs a positive stride, got {}x{}", w.stride_height, w.stride_width));
    if (w.pad_height < 0 || w.pad_width < 0)
        inference.fail(fmt::format("needs padding >= 0, got {}x{}", w.pad_height, w.pad_width));
    if (pool && (2 * w.pad_height > w.kernel_height || 2 * w.pad_width > w.kernel_width))
        inference.fail(fmt::format("needs padding at most half the kernel ({}x{}), got {}x{}", w.kernel_height,
                                   w.kernel_width, w.pad_height, w.pad_width));
    if (in.height + 2 * w.pad_height < w.kernel_height || in.width + 2 * w.pad_width < w.kernel_width)
        inference.fail(fmt::format(
            "has a {}x{} kernel with padding {}x{}, which does not fit its input {}; it needs height >= {} and "
            "width >= {}",
            w.kernel_height, w.kernel_width, w.pad_height, w.pad_width, in.str(), w.kernel_height - 2 * w.pad_height,
            w.kernel_width - 2 * w.pad_width));
}

}  // namespace ladon::engine
