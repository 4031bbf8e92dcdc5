#pragma once
// The fused multi-head loss on the GPU: ladon::cpu::multi_head_loss
// (kernels/ops.hpp) in ONE launch for every head at once.
//
// Differences from the CPU op, all because a kernel cannot throw:
// - Nothing is validated here; the engine validates head descriptors and
//   labels before a step (the CPU op throws on the same inputs). A present
//   softmax sample whose label is not an integer in [0, width) never causes an
//   out-of-bounds access (the label is only compared with column indices): it
//   gets gradient 0 and makes its head's loss NaN, so it cannot pass unseen.
//   An unknown LossKind does the same for every present row.
// - `heads` is an array of descriptors in DEVICE memory (its pointers are
//   device pointers), so a step can keep it resident and launch with no copy.
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/ops.hpp"

namespace ladon::cuda {

// Bytes of scratch multi_head_loss needs for `batch` rows and `num_heads`
// heads: per-block partial loss sums (double) and one arrival counter per head.
std::size_t multi_head_loss_scratch_bytes(int64_t batch, int num_heads);

// Every head's unweighted mean loss into head_losses_device[num_heads] and
// every head's weighted logit gradient (overwritten), as the CPU op.
// Deterministic: the same inputs give bitwise the same losses and gradients
// (fixed-order reductions, no float atomics).
//
// `scratch_device` holds multi_head_loss_scratch_bytes(batch, num_heads) bytes,
// 8-byte aligned (cudaMalloc memory is), and MUST BE ZEROED ONCE when
// allocated (cudaMemset): its per-head counters return to zero at the end of
// every launch, so later calls need no memset. One scratch serves one launch at
// a time (do not share it between concurrent streams).
cudaError_t multi_head_loss(int64_t batch, const ops::LossHead* heads_device, int num_heads, float* head_losses_device,
                            void* scratch_device, cudaStream_t stream);

}  // namespace ladon::cuda
