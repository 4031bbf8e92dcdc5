// Launch wrappers of the learned task weights (kernels in task_weights.cuh):
// a handful of heads, one small block.
#include "kernels/cuda/device.hpp"
#include "kernels/cuda/launch.hpp"
#include "kernels/cuda/task_weights.cuh"
#include "kernels/cuda/task_weights.hpp"

namespace ladon::cuda {
namespace detail = task_weights_detail;
namespace {
constexpr int kThreads = 32;
dim3 blocks_for(int num_heads) { return dim3(static_cast<unsigned>((num_heads + kThreads - 1) / kThreads)); }
}  // namespace

cudaError_t set_task_weights(int num_heads, const float* base_weights, const float* log_variance,
                             ops::LossHead* heads_device, float* weights_out, cudaStream_t stream) {
    if (num_heads < 0) return cudaErrorInvalidValue;
    if (num_heads == 0) return cudaSuccess;
    return launch(detail::set_task_weights_kernel, blocks_for(num_heads), dim3(kThreads), 0, stream, num_heads,
                  base_weights, log_variance, heads_device, weights_out);
}

cudaError_t task_weight_gradients(int num_heads, const ops::LossHead* heads_device, const float* head_losses,
                                  float* grad_log_variance, cudaStream_t stream) {
    if (num_heads < 0) return cudaErrorInvalidValue;
    if (num_heads == 0) return cudaSuccess;
    return launch(detail::task_weight_gradients_kernel, blocks_for(num_heads), dim3(kThreads), 0, stream, num_heads,
                  heads_device, head_losses, grad_log_variance);
}

}  // namespace ladon::cuda
