// Launch wrappers for batch_norm.cuh: the vector width and template variant.
#include <cstdint>

#include "kernels/cuda/batch_norm.cuh"
#include "kernels/cuda/batch_norm.hpp"
#include "kernels/cuda/device.hpp"
#include "kernels/cuda/launch.hpp"

namespace ladon::cuda {
namespace {

using batch_norm::threads_per_block;
using channel_reduce::grid;
using channel_reduce::Layout;
using channel_reduce::vector_width;
using channel_reduce::with_width;

bool valid(const ops::BatchNormShape& s) { return channel_reduce::fits(s.batch, s.channels, s.spatial); }
bool empty(const ops::BatchNormShape& s) { return s.batch * s.channels * s.spatial == 0; }
Layout layout(const ops::BatchNormShape& s, int width) {
    return channel_reduce::make_layout(s.batch, s.channels, s.spatial, width);
}

}  // namespace

int batch_norm_blocks_per_channel(const ops::BatchNormShape& shape) {
    if (!valid(shape) || empty(shape)) return 0;
    return layout(shape, 1).blocks_per_channel;
}

std::size_t batch_norm_workspace_bytes(const ops::BatchNormShape& shape) {
    // Width 1 splits into the most blocks; backward keeps the most sums.
    return std::size_t(shape.channels) * std::size_t(batch_norm_blocks_per_channel(shape)) *
           batch_norm::backward_sums * sizeof(float);
}

cudaError_t batch_norm_forward_training(const ops::BatchNormShape& shape, const float* x, const float* gamma,
                                        const float* beta, float* y, float* saved_mean, float* saved_inv_std,
                                        float* running_mean, float* running_var, float* workspace,
                                        cudaStream_t stream, bool relu) {
    if (!valid(shape)) return cudaErrorInvalidValue;
    if (empty(shape)) return cudaSuccess;
    if (workspace == nullptr) return cudaErrorInvalidValue;
    return with_width(vector_width(shape.spatial, x, y), [&](auto width) {
        constexpr int W = decltype(width)::value;
        const Layout l = layout(shape, W);
        const dim3 block(threads_per_block);
        cudaError_t error = launch(batch_norm::forward_sums_kernel<W>, grid(l), block, 0, stream, l, x, workspace);
        if (error != cudaSuccess) return error;
        const auto apply = relu ? batch_norm::forward_apply_kernel<W, true> : batch_norm::forward_apply_kernel<W, false>;
        return launch(apply, grid(l), block, 0, stream, l, shape.epsilon, shape.momentum, x,
                      static_cast<const float*>(workspace), gamma, beta, y, saved_mean, saved_inv_std, running_mean,
                      running_var);
    });
}

cudaError_t batch_norm_forward_inference(const ops::BatchNormShape& shape, const float* x, const float* gamma,
                                         const float* beta, const float* running_mean, const float* running_var,
                                         float* y, cudaStream_t stream, bool relu) {
    if (!valid(shape)) return cudaErrorInvalidValue;
    if (empty(shape)) return cudaSuccess;
    return with_width(vector_width(shape.spatial, x, y), [&](auto width) {
        constexpr int W = decltype(width)::value;
        const Layout l = layout(shape, W);
        const auto kernel =
            relu ? batch_norm::forward_inference_kernel<W, true> : batch_norm::forward_inference_kernel<W, false>;
        return launch(kernel, grid(l), dim3(threads_per_block), 0, stream, l, shape.epsilon, x, gamma, beta,
                      running_mean, running_var, y);
    });
}

cudaError_t batch_norm_backward(const ops::BatchNormShape& shape, const float* x, const float* grad_y,
                                const float* gamma, const float* saved_mean, const float* saved_inv_std, float* grad_x,
                                float* grad_gamma, float* grad_beta, float* workspace, cudaStream_t stream,
                                BatchNormBackwardOptions options) {
    if (!valid(shape)) return cudaErrorInvalidValue;
    if (empty(shape)) return cudaSuccess;
    if (workspace == nullptr) return cudaErrorInvalidValue;
    const float* y = options.relu_output;
    return with_width(vector_width(shape.spatial, x, grad_y, grad_x, y), [&](auto width) {
        constexpr int W = decltype(width)::value;
        const Layout l = layout(shape, W);
        const dim3 block(threads_per_block);
        namespace bn = batch_norm;
        const auto sums = y ? bn::backward_sums_kernel<W, true> : bn::backward_sums_kernel<W, false>;
        cudaError_t error = launch(sums, grid(l), block, 0, stream, l, x, grad_y, y, saved_mean, workspace);
        if (error != cudaSuccess) return error;
        const auto apply = y ? (options.accumulate ? bn::backward_apply_kernel<W, true, true>
                                                   : bn::backward_apply_kernel<W, true, false>)
                             : (options.accumulate ? bn::backward_apply_kernel<W, false, true>
                                                   : bn::backward_apply_kernel<W, false, false>);
        return launch(apply, grid(l), block, 0, stream, l, x, grad_y, y, static_cast<const float*>(workspace), gamma,
                      saved_mean, saved_inv_std, grad_x, grad_gamma, grad_beta);
    });
}

}  // namespace ladon::cuda
