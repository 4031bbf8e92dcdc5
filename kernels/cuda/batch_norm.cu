// Launch wrappers for batch_norm.cuh.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/cuda/batch_norm.cuh"
#include "kernels/cuda/batch_norm.hpp"
#include "kernels/cuda/device.hpp"
#include "kernels/cuda/launch.hpp"

namespace ladon::cuda {
namespace {

using batch_norm::threads_per_block;

constexpr int64_t max_blocks = 4096;
constexpr int64_t max_grid_y = 65535;

// Shapes the per-channel grid can take (gridDim.x up to 2^31 - 1).
bool valid(const ops::BatchNormShape& s) {
    return s.batch >= 0 && s.channels >= 0 && s.spatial >= 0 && s.channels <= std::numeric_limits<int32_t>::max();
}

batch_norm::Geometry geometry(const ops::BatchNormShape& s) {
    return {s.batch, s.channels, s.spatial, s.epsilon, s.momentum};
}

}  // namespace

cudaError_t batch_norm_forward_training(const ops::BatchNormShape& shape, const float* x, const float* gamma,
                                        const float* beta, float* y, float* saved_mean, float* saved_inv_std,
                                        float* running_mean, float* running_var, cudaStream_t stream) {
    if (!valid(shape)) return cudaErrorInvalidValue;
    if (shape.channels == 0) return cudaSuccess;
    return launch(batch_norm::forward_training_kernel, dim3(static_cast<unsigned>(shape.channels)),
                  dim3(threads_per_block), 0, stream, geometry(shape), x, gamma, beta, y, saved_mean, saved_inv_std,
                  running_mean, running_var);
}

cudaError_t batch_norm_forward_inference(const ops::BatchNormShape& shape, const float* x, const float* gamma,
                                         const float* beta, const float* running_mean, const float* running_var,
                                         float* y, cudaStream_t stream) {
    if (!valid(shape)) return cudaErrorInvalidValue;
    const int64_t planes = shape.batch * shape.channels;
    if (planes == 0 || shape.spatial == 0) return cudaSuccess;
    // x: enough blocks to cover one plane (up to max_blocks); y: one block per
    // plane up to the 65535 a grid's y allows, striding beyond.
    const int64_t plane_blocks = std::clamp<int64_t>((shape.spatial + threads_per_block - 1) / threads_per_block, 1,
                                                     max_blocks);
    const int64_t plane_rows = std::min<int64_t>(planes, max_grid_y);
    const dim3 grid(static_cast<unsigned>(plane_blocks), static_cast<unsigned>(plane_rows));
    return launch(batch_norm::forward_inference_kernel, grid, dim3(threads_per_block), 0, stream, geometry(shape),
                  plane_rows % shape.channels, x, gamma, beta, running_mean, running_var, y);
}

cudaError_t batch_norm_backward(const ops::BatchNormShape& shape, const float* x, const float* grad_y,
                                const float* gamma, const float* saved_mean, const float* saved_inv_std, float* grad_x,
                                float* grad_gamma, float* grad_beta, cudaStream_t stream) {
    if (!valid(shape)) return cudaErrorInvalidValue;
    if (shape.channels == 0) return cudaSuccess;
    return launch(batch_norm::backward_kernel, dim3(static_cast<unsigned>(shape.channels)), dim3(threads_per_block), 0,
                  stream, geometry(shape), x, grad_y, gamma, saved_mean, saved_inv_std, grad_x, grad_gamma, grad_beta);
}

}  // namespace ladon::cuda
