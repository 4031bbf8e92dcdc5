// Channel concat, one input at a time. In NCHW, input sample n is one
// contiguous run of channels * spatial floats, and so is its slice of y, so
// each (sample, channel) plane is a contiguous copy.
#include <cstdint>

#include "kernels/ops.hpp"

namespace ladon::cpu {
namespace {

constexpr int64_t parallel_threshold = 1 << 15;

}  // namespace

void concat_forward(int64_t batch, int64_t spatial, int64_t channels, int64_t channel_offset, int64_t total_channels,
                    const float* input, float* y) {
    // (n, c) planes are shared out together so a batch of 1 still spreads
    // over the threads.
#pragma omp parallel for collapse(2) schedule(static) if (batch * channels * spatial >= parallel_threshold)
    for (int64_t n = 0; n < batch; ++n) {
        for (int64_t c = 0; c < channels; ++c) {
            const float* source = input + (n * channels + c) * spatial;
            float* destination = y + (n * total_channels + channel_offset + c) * spatial;
            for (int64_t s = 0; s < spatial; ++s) destination[s] = source[s];
        }
    }
}

void concat_backward(int64_t batch, int64_t spatial, int64_t channels, int64_t channel_offset, int64_t total_channels,
                     const float* grad_y, float* grad_input) {
#pragma omp parallel for collapse(2) schedule(static) if (batch * channels * spatial >= parallel_threshold)
    for (int64_t n = 0; n < batch; ++n) {
        for (int64_t c = 0; c < channels; ++c) {
            const float* source = grad_y + (n * total_channels + channel_offset + c) * spatial;
            float* destination = grad_input + (n * channels + c) * spatial;
            for (int64_t s = 0; s < spatial; ++s) destination[s] += source[s];
        }
    }
}

}  // namespace ladon::cpu
