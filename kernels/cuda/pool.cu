// Launch wrappers for pool.cuh.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <type_traits>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/fast_divisor.hpp"
#include "kernels/cuda/launch.hpp"
#include "kernels/cuda/pool.cuh"
#include "kernels/cuda/pool.hpp"

namespace ladon::cuda {
namespace {

using pool::threads_per_block;

// Grid-stride kernels: enough blocks to fill a large GPU several times over.
constexpr int64_t max_blocks = 4096;
constexpr int64_t int32_limit = std::numeric_limits<int32_t>::max();

dim3 grid_for(int64_t work_items) {
    return dim3(static_cast<unsigned>(
        std::clamp<int64_t>((work_items + threads_per_block - 1) / threads_per_block, 1, max_blocks)));
}

// Whether the product of non-negative `sizes` is below 2^31, without
// overflowing on the way.
bool product_fits_int32(std::initializer_list<int64_t> sizes) {
    if (std::find(sizes.begin(), sizes.end(), 0) != sizes.end()) return true;
    int64_t product = 1;
    for (const int64_t size : sizes) {
        if (product > int32_limit / size) return false;
        product *= size;
    }
    return true;
}

// The CPU backend's validation (kernels/cpu/pool.cpp), as an error code, and
// what the kernels' 32-bit index math needs: every size and padded extent,
// and the input and the output, below 2^31 elements.
bool valid(const ops::Pool2dShape& s) {
    const bool positive = s.batch >= 0 && s.channels >= 0 && s.in_height > 0 && s.in_width > 0 && s.kernel_height > 0 &&
                          s.kernel_width > 0 && s.stride_height > 0 && s.stride_width > 0 && s.pad_height >= 0 &&
                          s.pad_width >= 0;
    if (!positive) return false;
    const bool small = s.in_height <= int32_limit && s.in_width <= int32_limit && s.kernel_height <= int32_limit &&
                       s.kernel_width <= int32_limit && s.stride_height <= int32_limit &&
                       s.stride_width <= int32_limit && s.pad_height <= (int32_limit - s.in_height) / 2 &&
                       s.pad_width <= (int32_limit - s.in_width) / 2;
    return small && s.out_height() >= 1 && s.out_width() >= 1 && product_fits_int32({s.in_height, s.in_width}) &&
           product_fits_int32({s.out_height(), s.out_width()}) &&
           product_fits_int32({s.batch, s.channels, s.in_height, s.in_width}) &&
           product_fits_int32({s.batch, s.channels, s.out_height(), s.out_width()});
}

pool::Windows windows(const ops::Pool2dShape& s) {
    return {int(s.in_height),
            int(s.in_width),
            int(s.out_height()),
            int(s.out_width()),
            int(s.kernel_height),
            int(s.kernel_width),
            int(s.stride_height),
            int(s.stride_width),
            int(s.pad_height),
            int(s.pad_width),
            FastDivisor(std::uint32_t(s.stride_height)),
            FastDivisor(std::uint32_t(s.stride_width))};
}

// One run per thread over a [planes, height, width] tensor.
pool::Runs runs(int64_t planes, int64_t height, int64_t width) {
    const int64_t per_row = (width + pool::run - 1) / pool::run;
    return {int(width), FastDivisor(std::uint32_t(per_row)), FastDivisor(std::uint32_t(height)),
            unsigned(planes * height * per_row)};
}

template <typename T>
bool aligned(const T* pointer, int width) {
    return reinterpret_cast<std::uintptr_t>(pointer) % (sizeof(T) * std::size_t(width)) == 0;
}

// The widest of 4, 2 and 1 elements that divides a row and to whose Pack
// every pointer is aligned.
template <typename... T>
int vector_width(int64_t row_length, const T*... pointers) {
    for (const int width : {4, 2})
        if (row_length % width == 0 && (aligned(pointers, width) && ...)) return width;
    return 1;
}

// run(std::integral_constant<int, W>{}) with the vector width W as a constant.
template <typename Run>
cudaError_t with_width(int width, Run&& run) {
    if (width == 4) return run(std::integral_constant<int, 4>{});
    if (width == 2) return run(std::integral_constant<int, 2>{});
    return run(std::integral_constant<int, 1>{});
}

bool byte_argmax(const ops::Pool2dShape& s) { return max_pool2d_argmax_bytes(s) == 1; }

}  // namespace

cudaError_t max_pool2d_forward(const ops::Pool2dShape& shape, const float* input, float* output, int32_t* argmax,
                               cudaStream_t stream) {
    if (!valid(shape)) return cudaErrorInvalidValue;
    if (shape.output_size() == 0) return cudaSuccess;
    const pool::Runs r = runs(shape.batch * shape.channels, shape.out_height(), shape.out_width());
    auto* argmax_bytes = reinterpret_cast<std::uint8_t*>(argmax);
    const int width = byte_argmax(shape) ? vector_width(shape.out_width(), output, argmax_bytes)
                                         : vector_width(shape.out_width(), output, argmax);
    return with_width(width, [&](auto vector) {
        constexpr int W = decltype(vector)::value;
        if (byte_argmax(shape))
            return launch(pool::max_pool2d_forward_kernel<std::uint8_t, W>, grid_for(r.count), dim3(threads_per_block),
                          0, stream, windows(shape), r, input, output, argmax_bytes);
        return launch(pool::max_pool2d_forward_kernel<int32_t, W>, grid_for(r.count), dim3(threads_per_block), 0,
                      stream, windows(shape), r, input, output, argmax);
    });
}

cudaError_t max_pool2d_backward(const ops::Pool2dShape& shape, const float* grad_output, const int32_t* argmax,
                                float* grad_input, cudaStream_t stream, bool accumulate) {
    if (!valid(shape)) return cudaErrorInvalidValue;
    if (shape.input_size() == 0) return cudaSuccess;
    const pool::Runs r = runs(shape.batch * shape.channels, shape.in_height, shape.in_width);
    const auto* argmax_bytes = reinterpret_cast<const std::uint8_t*>(argmax);
    return with_width(vector_width(shape.in_width, grad_input), [&](auto vector) {
        constexpr int W = decltype(vector)::value;
        if (byte_argmax(shape))
            return launch(pool::max_pool2d_backward_kernel<std::uint8_t, W>, grid_for(r.count), dim3(threads_per_block),
                          0, stream, windows(shape), r, grad_output, argmax_bytes, grad_input, accumulate);
        return launch(pool::max_pool2d_backward_kernel<int32_t, W>, grid_for(r.count), dim3(threads_per_block), 0,
                      stream, windows(shape), r, grad_output, argmax, grad_input, accumulate);
    });
}

cudaError_t avg_pool2d_forward(const ops::Pool2dShape& shape, const float* input, float* output, cudaStream_t stream) {
    if (!valid(shape)) return cudaErrorInvalidValue;
    if (shape.output_size() == 0) return cudaSuccess;
    const pool::Runs r = runs(shape.batch * shape.channels, shape.out_height(), shape.out_width());
    return with_width(vector_width(shape.out_width(), output), [&](auto vector) {
        return launch(pool::avg_pool2d_forward_kernel<decltype(vector)::value>, grid_for(r.count),
                      dim3(threads_per_block), 0, stream, windows(shape), r, input, output);
    });
}

cudaError_t avg_pool2d_backward(const ops::Pool2dShape& shape, const float* grad_output, float* grad_input,
                                cudaStream_t stream, bool accumulate) {
    if (!valid(shape)) return cudaErrorInvalidValue;
    if (shape.input_size() == 0) return cudaSuccess;
    const pool::Runs r = runs(shape.batch * shape.channels, shape.in_height, shape.in_width);
    return with_width(vector_width(shape.in_width, grad_input), [&](auto vector) {
        return launch(pool::avg_pool2d_backward_kernel<decltype(vector)::value>, grid_for(r.count),
                      dim3(threads_per_block), 0, stream, windows(shape), r, grad_output, grad_input, accumulate);
    });
}

}  // namespace ladon::cuda
