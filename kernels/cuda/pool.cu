// Launch wrappers for pool.cuh.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/launch.hpp"
#include "kernels/cuda/pool.cuh"
#include "kernels/cuda/pool.hpp"

namespace ladon::cuda {
namespace {

using pool::threads_per_block;

// Grid-stride kernels: enough blocks to fill a large GPU several times over.
constexpr int64_t max_blocks = 4096;

dim3 grid_for(int64_t work_items) {
    return dim3(static_cast<unsigned>(
        std::clamp<int64_t>((work_items + threads_per_block - 1) / threads_per_block, 1, max_blocks)));
}

// The CPU backend's validation (kernels/cpu/pool.cpp), as an error code.
bool valid(const ops::Pool2dShape& s) {
    const bool positive = s.batch >= 0 && s.channels >= 0 && s.in_height > 0 && s.in_width > 0 && s.kernel_height > 0 &&
                          s.kernel_width > 0 && s.stride_height > 0 && s.stride_width > 0 && s.pad_height >= 0 &&
                          s.pad_width >= 0;
    return positive && s.out_height() >= 1 && s.out_width() >= 1 &&
           s.in_height * s.in_width <= std::numeric_limits<int32_t>::max();
}

pool::Geometry geometry(const ops::Pool2dShape& s) {
    return {s.batch * s.channels, s.in_height,     s.in_width,     s.out_height(), s.out_width(), s.kernel_height,
            s.kernel_width,       s.stride_height, s.stride_width, s.pad_height,   s.pad_width};
}

}  // namespace

cudaError_t max_pool2d_forward(const ops::Pool2dShape& shape, const float* input, float* output, int32_t* argmax,
                               cudaStream_t stream) {
    if (!valid(shape)) return cudaErrorInvalidValue;
    if (shape.output_size() == 0) return cudaSuccess;
    return launch(pool::max_pool2d_forward_kernel, grid_for(shape.output_size()), dim3(threads_per_block), 0, stream,
                  geometry(shape), input, output, argmax);
}

cudaError_t max_pool2d_backward(const ops::Pool2dShape& shape, const float* grad_output, const int32_t* argmax,
                                float* grad_input, cudaStream_t stream, bool accumulate) {
    if (!valid(shape)) return cudaErrorInvalidValue;
    if (shape.input_size() == 0) return cudaSuccess;
    return launch(pool::max_pool2d_backward_kernel, grid_for(shape.input_size()), dim3(threads_per_block), 0, stream,
                  geometry(shape), grad_output, argmax, grad_input, accumulate);
}

cudaError_t avg_pool2d_forward(const ops::Pool2dShape& shape, const float* input, float* output, cudaStream_t stream) {
    if (!valid(shape)) return cudaErrorInvalidValue;
    if (shape.output_size() == 0) return cudaSuccess;
    return launch(pool::avg_pool2d_forward_kernel, grid_for(shape.output_size()), dim3(threads_per_block), 0, stream,
                  geometry(shape), input, output);
}

cudaError_t avg_pool2d_backward(const ops::Pool2dShape& shape, const float* grad_output, float* grad_input,
                                cudaStream_t stream, bool accumulate) {
    if (!valid(shape)) return cudaErrorInvalidValue;
    if (shape.input_size() == 0) return cudaSuccess;
    return launch(pool::avg_pool2d_backward_kernel, grid_for(shape.input_size()), dim3(threads_per_block), 0, stream,
                  geometry(shape), grad_output, grad_input, accumulate);
}

}  // namespace ladon::cuda
