// softmax over the channel axis: x [batch, channels, spatial], each (n, s)
// column normalised over its channels (spatial 1: over a row's features).
//
// Parallel decomposition: one task per sample; within it the columns are
// visited together, channel by channel, so reads stay contiguous along the
// spatial axis. Each column's max, sum and dot are accumulated over channels
// in order, whatever the thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "kernels/ops.hpp"

namespace ladon::cpu {
namespace {

constexpr int64_t parallel_threshold = 1 << 15;  // elements; below it one thread

void validate(const char* op, int64_t batch, int64_t channels, int64_t spatial) {
    if (batch < 0 || channels < 1 || spatial < 1)
        throw std::invalid_argument(std::string(op) + ": expected batch >= 0, channels >= 1 and spatial >= 1");
}

}  // namespace

void softmax_forward(int64_t batch, int64_t channels, int64_t spatial, const float* x, float* y) {
    validate("softmax_forward", batch, channels, spatial);
    const int64_t plane = channels * spatial;
#pragma omp parallel if (batch * plane >= parallel_threshold)
    {
        std::vector<float> column_max(static_cast<std::size_t>(spatial)), column_sum(static_cast<std::size_t>(spatial));
#pragma omp for schedule(static)
        for (int64_t n = 0; n < batch; ++n) {
            const float* in = x + n * plane;
            float* out = y + n * plane;
            std::fill(column_max.begin(), column_max.end(), -std::numeric_limits<float>::infinity());
            std::fill(column_sum.begin(), column_sum.end(), 0.0f);
            for (int64_t c = 0; c < channels; ++c)
                for (int64_t s = 0; s < spatial; ++s) column_max[s] = std::max(column_max[s], in[c * spatial + s]);
            for (int64_t c = 0; c < channels; ++c)
                for (int64_t s = 0; s < spatial; ++s) {
                    const float e = std::exp(in[c * spatial + s] - column_max[s]);
                    out[c * spatial + s] = e;
                    column_sum[s] += e;
                }
            for (int64_t c = 0; c < channels; ++c)
                for (int64_t s = 0; s < spatial; ++s) out[c * spatial + s] /= column_sum[s];
        }
    }
}

// d x = y * (d y - sum_c d y * y), per column.
void softmax_backward(int64_t batch, int64_t channels, int64_t spatial, const float* y, const float* grad_y,
                      float* grad_x) {
    validate("softmax_backward", batch, channels, spatial);
    const int64_t plane = channels * spatial;
#pragma omp parallel if (batch * plane >= parallel_threshold)
    {
        std::vector<float> column_dot(static_cast<std::size_t>(spatial));
#pragma omp for schedule(static)
        for (int64_t n = 0; n < batch; ++n) {
            const int64_t base = n * plane;
            std::fill(column_dot.begin(), column_dot.end(), 0.0f);
            for (int64_t c = 0; c < channels; ++c)
                for (int64_t s = 0; s < spatial; ++s) {
                    const int64_t i = base + c * spatial + s;
                    column_dot[s] += grad_y[i] * y[i];
                }
            for (int64_t c = 0; c < channels; ++c)
                for (int64_t s = 0; s < spatial; ++s) {
                    const int64_t i = base + c * spatial + s;
                    grad_x[i] += y[i] * (grad_y[i] - column_dot[s]);
                }
        }
    }
}

}  // namespace ladon::cpu
