// Launch wrapper of the fused multi-head loss (kernels in multi_head_loss.cuh).
#include "kernels/cuda/device.hpp"
#include "kernels/cuda/launch.hpp"
#include "kernels/cuda/multi_head_loss.cuh"
#include "kernels/cuda/multi_head_loss.hpp"

namespace ladon::cuda {
namespace detail = multi_head_loss_detail;

// Layout: double partials[num_heads][row_blocks], then unsigned arrivals[num_heads].
std::size_t multi_head_loss_scratch_bytes(int64_t batch, int num_heads) {
    const auto heads = static_cast<std::size_t>(num_heads < 0 ? 0 : num_heads);
    return heads * static_cast<std::size_t>(detail::row_blocks(batch)) * sizeof(double) + heads * sizeof(unsigned);
}

cudaError_t multi_head_loss(int64_t batch, const ops::LossHead* heads_device, int num_heads, float* head_losses_device,
                            void* scratch_device, cudaStream_t stream) {
    if (batch < 0 || num_heads < 0 || num_heads > 65535) return cudaErrorInvalidValue;
    if (num_heads == 0) return cudaSuccess;
    const int64_t blocks = detail::row_blocks(batch);
    if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
    double* const partials = static_cast<double*>(scratch_device);
    unsigned* const arrivals = reinterpret_cast<unsigned*>(partials + blocks * num_heads);
    return launch(detail::multi_head_loss_kernel, dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(num_heads)),
                  dim3(detail::kThreadsPerBlock), 0, stream, batch, heads_device, head_losses_device, partials,
                  arrivals);
}

}  // namespace ladon::cuda
