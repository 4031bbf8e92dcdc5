// Launch wrappers for elementwise.cuh.
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/elementwise.hpp"
#include "kernels/cuda/launch.hpp"

namespace ladon::cuda {
namespace {

using elementwise::threads_per_block;

// Grid-stride kernels: enough blocks to fill a large GPU several times over,
// then each thread loops.
constexpr int64_t max_blocks = 4096;

dim3 grid_for(int64_t work_items) {
    return dim3(static_cast<unsigned>(
        std::clamp<int64_t>((work_items + threads_per_block - 1) / threads_per_block, 1, max_blocks)));
}

template <typename Op>
cudaError_t run(int64_t count, const Op& op, cudaStream_t stream) {
    if (count < 0) return cudaErrorInvalidValue;
    if (count == 0) return cudaSuccess;
    return launch(elementwise::elementwise_kernel<Op>, grid_for(count), dim3(threads_per_block), 0, stream, count, op);
}

// As kernels/cpu/dropout.cpp: in float; probability >= 1 keeps nothing and
// the 0 keeps inf out of the arithmetic.
float keep_scale(float probability) { return probability < 1.0f ? 1.0f / (1.0f - probability) : 0.0f; }

template <bool backward>
cudaError_t run_concat(int64_t batch, int64_t spatial, int64_t channels, int64_t channel_offset, int64_t total_channels,
                       const float* source, float* destination, cudaStream_t stream) {
    if (batch < 0 || spatial < 0 || channels < 0 || channel_offset < 0 || channel_offset + channels > total_channels)
        return cudaErrorInvalidValue;
    const elementwise::ConcatGeometry geometry{batch, channels * spatial, total_channels * spatial,
                                               channel_offset * spatial};
    if (batch == 0 || geometry.row_length == 0) return cudaSuccess;
    // float4 when every row of both tensors starts 16-byte aligned.
    const bool vectorizable = geometry.row_length % 4 == 0 && geometry.y_row_length % 4 == 0 &&
                              geometry.y_offset % 4 == 0 && reinterpret_cast<uintptr_t>(source) % 16 == 0 &&
                              reinterpret_cast<uintptr_t>(destination) % 16 == 0;
    if (vectorizable)
        return launch(elementwise::concat_kernel<4, backward>, grid_for(batch * geometry.row_length / 4),
                      dim3(threads_per_block), 0, stream, geometry, source, destination);
    return launch(elementwise::concat_kernel<1, backward>, grid_for(batch * geometry.row_length),
                  dim3(threads_per_block), 0, stream, geometry, source, destination);
}

}  // namespace

cudaError_t activation_forward(ops::Activation kind, float negative_slope, int64_t count, const float* x, float* y,
                               cudaStream_t stream) {
    using enum ops::Activation;
    switch (kind) {
        case identity:
            return run(count, elementwise::ActivationForward<identity>{negative_slope, x, y}, stream);
        case relu:
            return run(count, elementwise::ActivationForward<relu>{negative_slope, x, y}, stream);
        case leaky_relu:
            return run(count, elementwise::ActivationForward<leaky_relu>{negative_slope, x, y}, stream);
        case sigmoid:
            return run(count, elementwise::ActivationForward<sigmoid>{negative_slope, x, y}, stream);
        case tanh:
            return run(count, elementwise::ActivationForward<tanh>{negative_slope, x, y}, stream);
    }
    return cudaErrorInvalidValue;
}

cudaError_t activation_backward(ops::Activation kind, float negative_slope, int64_t count, const float* x,
                                const float* y, const float* grad_y, float* grad_x, cudaStream_t stream,
                                bool accumulate) {
    using enum ops::Activation;
    switch (kind) {
        case identity:
            return run(count, elementwise::ActivationBackward<identity>{negative_slope, x, y, grad_y, grad_x, accumulate}, stream);
        case relu:
            return run(count, elementwise::ActivationBackward<relu>{negative_slope, x, y, grad_y, grad_x, accumulate}, stream);
        case leaky_relu:
            return run(count, elementwise::ActivationBackward<leaky_relu>{negative_slope, x, y, grad_y, grad_x, accumulate},
                       stream);
        case sigmoid:
            return run(count, elementwise::ActivationBackward<sigmoid>{negative_slope, x, y, grad_y, grad_x, accumulate}, stream);
        case tanh:
            return run(count, elementwise::ActivationBackward<tanh>{negative_slope, x, y, grad_y, grad_x, accumulate}, stream);
    }
    return cudaErrorInvalidValue;
}

cudaError_t dropout_forward(int64_t count, float probability, uint64_t seed, const float* x, float* y,
                            cudaStream_t stream, const uint64_t* seed_device) {
    return run(count, elementwise::DropoutForward{probability, keep_scale(probability), seed, x, y, seed_device},
               stream);
}

cudaError_t dropout_backward(int64_t count, float probability, uint64_t seed, const float* grad_y, float* grad_x,
                             cudaStream_t stream, const uint64_t* seed_device, bool accumulate) {
    const elementwise::DropoutForward mask{probability, keep_scale(probability), seed, nullptr, nullptr, seed_device};
    return run(count, elementwise::DropoutBackward{mask, grad_y, grad_x, accumulate}, stream);
}

cudaError_t add_forward(int64_t count, const float* a, const float* b, float* y, cudaStream_t stream, bool relu) {
    return run(count, elementwise::Add{a, b, y, relu}, stream);
}

cudaError_t accumulate(int64_t count, const float* source, float* destination, cudaStream_t stream, bool relu) {
    return run(count, elementwise::Accumulate{source, destination, relu}, stream);
}

cudaError_t scale(int64_t count, float factor, float* data, cudaStream_t stream) {
    return run(count, elementwise::Scale{factor, data}, stream);
}

cudaError_t fill(int64_t count, float value, float* data, cudaStream_t stream) {
    return run(count, elementwise::Fill{value, data}, stream);
}

cudaError_t concat_forward(int64_t batch, int64_t spatial, int64_t channels, int64_t channel_offset,
                           int64_t total_channels, const float* input, float* y, cudaStream_t stream) {
    return run_concat<false>(batch, spatial, channels, channel_offset, total_channels, input, y, stream);
}

cudaError_t concat_backward(int64_t batch, int64_t spatial, int64_t channels, int64_t channel_offset,
                            int64_t total_channels, const float* grad_y, float* grad_input, cudaStream_t stream) {
    return run_concat<true>(batch, spatial, channels, channel_offset, total_channels, grad_y, grad_input, stream);
}

}  // namespace ladon::cuda
