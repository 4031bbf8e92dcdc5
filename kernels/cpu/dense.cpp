// dense (fully connected): output[N, O] = input[N, I] * weight[O, I]^T + bias.
// Each pass is one GEMM over the whole batch, called outside any parallel
// region so OpenBLAS spreads it over all threads (it splits C by rows and
// columns, never the inner dimension, so the result is deterministic).
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/gemm.hpp"
#include "kernels/ops.hpp"

namespace ladon::cpu {
namespace {

using detail::gemm;

// Below this many elements a bias pass runs on one thread.
constexpr int64_t parallel_threshold = 1 << 15;
// Columns per bias-gradient task: wide enough for contiguous, vectorised rows.
constexpr int64_t bias_columns_per_task = 256;

void validate(const char* op, const DenseShape& s) {
    detail::require_blas_size(op, "batch", s.batch);
    detail::require_blas_size(op, "in_features", s.in_features);
    detail::require_blas_size(op, "out_features", s.out_features);
}

}  // namespace

// The bias is broadcast into the output first and the GEMM accumulates onto
// it (beta = 1): one pass over the output instead of two.
void dense_forward(const DenseShape& shape, const float* input, const float* weight, const float* bias, float* output) {
    validate("dense_forward", shape);
    const int64_t batch = shape.batch, in = shape.in_features, out = shape.out_features;
    if (bias != nullptr) {
#pragma omp parallel for schedule(static) if (batch * out >= parallel_threshold)
        for (int64_t n = 0; n < batch; ++n) std::copy(bias, bias + out, output + n * out);
    }
    gemm(false, true, batch, out, in, 1.0f, input, in, weight, in, bias != nullptr ? 1.0f : 0.0f, output, out);
}

// grad_input[N, I] += grad_output[N, O] * weight[O, I].
void dense_backward_data(const DenseShape& shape, const float* weight, const float* grad_output, float* grad_input) {
    validate("dense_backward_data", shape);
    const int64_t batch = shape.batch, in = shape.in_features, out = shape.out_features;
    gemm(false, false, batch, in, out, 1.0f, grad_output, out, weight, in, 1.0f, grad_input, in);
}

// grad_weight[O, I] += grad_output^T[O, N] * input[N, I]. The bias gradient is
// a column sum of grad_output: each task owns a block of columns and adds the
// rows in sample order, so the result does not depend on the thread count.
void dense_backward_filter(const DenseShape& shape, const float* input, const float* grad_output, float* grad_weight,
                           float* grad_bias) {
    validate("dense_backward_filter", shape);
    const int64_t batch = shape.batch, in = shape.in_features, out = shape.out_features;
    gemm(true, false, out, in, batch, 1.0f, grad_output, out, input, in, 1.0f, grad_weight, in);
    if (grad_bias == nullptr) return;
#pragma omp parallel for schedule(static) if (batch * out >= parallel_threshold)
    for (int64_t begin = 0; begin < out; begin += bias_columns_per_task) {
        const int64_t end = std::min(begin + bias_columns_per_task, out);
        for (int64_t n = 0; n < batch; ++n) {
            const float* row = grad_output + n * out;
            for (int64_t o = begin; o < end; ++o) grad_bias[o] += row[o];
        }
    }
}

}  // namespace ladon::cpu
