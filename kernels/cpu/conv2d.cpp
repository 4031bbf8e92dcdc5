// conv2d as im2col + GEMM, one sample at a time. Per sample, with
// K = in_channels * kernel_height * kernel_width and P = out_height * out_width:
//   forward          output[Cout, P]  = weight[Cout, K] * columns[K, P] (+ bias)
//   backward_data    columns[K, P]    = weight^T * grad_output[Cout, P], then col2im
//   backward_filter  grad_weight     += grad_output[Cout, P] * columns^T
// A 1x1, stride-1, unpadded conv needs no im2col: the input [Cin, H*W] already
// is the column matrix.
//
// Two schedules, chosen by batch against the thread count T at the call:
// - batch >= T: samples are split across threads; each thread unfolds into its
//   own column buffer and calls a single-threaded GEMM (OpenBLAS's OpenMP build
//   runs a GEMM called inside a parallel region on the calling thread).
// - batch < T: samples run one after another; the unfolding is split across
//   threads and each GEMM, called outside any parallel region, uses all T.
// A conv too small to be worth waking threads takes the first schedule on one
// thread. The choice depends only on the shape and T, so results are
// reproducible for a given T.
// Workspace layout: T column buffers of K * P floats (none for the 1x1 case),
// then T - 1 partial weight gradients of Cout * K floats and batch * Cout
// per-sample bias sums (both backward_filter only).
// T is omp_get_max_threads() at each call, so the workspace must be sized with
// conv2d_workspace_floats(shape, T) for that same T: a call made with more
// threads than the workspace was sized for writes past its end.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/im2col.hpp"
#include "kernels/ops.hpp"

namespace ladon::cpu {
namespace {

using detail::gemm;

// Below this many multiply-adds a whole conv pass runs on one thread: waking
// a team costs microseconds, and far more on a busy machine.
constexpr int64_t parallel_multiply_adds = 1 << 19;

bool is_pointwise(const Conv2dShape& s) {
    return s.kernel_height == 1 && s.kernel_width == 1 && s.stride_height == 1 && s.stride_width == 1 &&
           s.pad_height == 0 && s.pad_width == 0;
}

int64_t column_rows(const Conv2dShape& s) { return s.in_channels * s.kernel_height * s.kernel_width; }
int64_t positions(const Conv2dShape& s) { return s.out_height() * s.out_width(); }
int64_t column_floats(const Conv2dShape& s) { return is_pointwise(s) ? 0 : column_rows(s) * positions(s); }

void validate(const char* op, const Conv2dShape& s) {
    const bool positive = s.batch >= 0 && s.in_channels > 0 && s.in_height > 0 && s.in_width > 0 &&
                          s.out_channels > 0 && s.kernel_height > 0 && s.kernel_width > 0 && s.stride_height > 0 &&
                          s.stride_width > 0 && s.pad_height >= 0 && s.pad_width >= 0;
    if (!positive || s.out_height() < 1 || s.out_width() < 1)
        throw std::invalid_argument(std::string(op) +
                                    ": invalid shape (expected positive sizes and strides, non-negative padding, "
                                    "and a kernel that fits the padded input)");
    detail::require_blas_size(op, "out_channels", s.out_channels);
    detail::require_blas_size(op, "in_channels * kernel_height * kernel_width", column_rows(s));
    detail::require_blas_size(op, "out_height * out_width", positions(s));
}

// Sum of n floats in eight fixed lanes: vectorisable, and its order depends
// only on n, never on the thread that runs it.
float sum_floats(const float* x, int64_t n) {
    float lanes[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) lanes[j] += x[i + j];
    float tail = 0.0f;
    for (; i < n; ++i) tail += x[i];
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])) + tail;
}

// The column matrix of sample n: the input itself for a pointwise conv,
// otherwise `columns` filled by the caller.
const float* columns_of(const Conv2dShape& s, const float* input, int64_t n, const float* columns) {
    return is_pointwise(s) ? input + n * s.in_channels * s.in_height * s.in_width : columns;
}

bool worth_threads(const Conv2dShape& s) {
    return s.batch * s.out_channels * column_rows(s) * positions(s) >= parallel_multiply_adds;
}

// The batch < T schedule pays off only with work for every thread; otherwise
// samples are split across however many threads the team gets (one when the
// conv is too small to be worth threads at all).
bool split_over_samples(const Conv2dShape& s, int threads) { return s.batch >= threads || !worth_threads(s); }

// Unfolds sample n on all threads of a new team (the batch < T schedule).
void im2col_all_threads(const Conv2dShape& s, const float* image, float* columns) {
    const int64_t rows = column_rows(s);
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < rows; ++row) detail::im2col(s, image, columns, row, row + 1);
}

}  // namespace

std::size_t conv2d_workspace_floats(const Conv2dShape& shape, int threads) {
    const int64_t t = std::max(threads, 1);
    return static_cast<std::size_t>(t * column_floats(shape) + (t - 1) * shape.weight_size() +
                                    shape.batch * shape.out_channels);
}

// Owner of each output sample: one thread (batch >= T) or the whole team
// through a multi-threaded GEMM (batch < T). The bias is written first and
// the GEMM accumulates onto it (beta = 1), saving a second pass over the output.
void conv2d_forward(const Conv2dShape& shape, const float* input, const float* weight, const float* bias, float* output,
                    float* workspace) {
    validate("conv2d_forward", shape);
    const int threads = omp_get_max_threads();
    const int64_t rows = column_rows(shape), count = positions(shape), columns_size = column_floats(shape);
    const int64_t input_sample = shape.in_channels * shape.in_height * shape.in_width;
    const int64_t output_sample = shape.out_channels * count;

    auto multiply = [&](int64_t n, const float* columns) {
        float* out = output + n * output_sample;
        if (bias != nullptr)
            for (int64_t c = 0; c < shape.out_channels; ++c) std::fill(out + c * count, out + (c + 1) * count, bias[c]);
        gemm(false, false, shape.out_channels, count, rows, 1.0f, weight, rows, columns_of(shape, input, n, columns),
             count, bias != nullptr ? 1.0f : 0.0f, out, count);
    };

    if (split_over_samples(shape, threads)) {
#pragma omp parallel num_threads(threads) if (worth_threads(shape))
        {
            float* columns = workspace + omp_get_thread_num() * columns_size;
#pragma omp for schedule(static)
            for (int64_t n = 0; n < shape.batch; ++n) {
                if (!is_pointwise(shape)) detail::im2col(shape, input + n * input_sample, columns, 0, rows);
                multiply(n, columns);
            }
        }
    } else {
        for (int64_t n = 0; n < shape.batch; ++n) {
            if (!is_pointwise(shape)) im2col_all_threads(shape, input + n * input_sample, workspace);
            multiply(n, workspace);
        }
    }
}

// Each sample's input gradient is owned by the thread that handles the sample
// (batch >= T), or, within one sample, each input channel's plane by one
// thread of the col2im team (batch < T); either way no two threads add into
// the same element, and each element's additions happen in a fixed order.
void conv2d_backward_data(const Conv2dShape& shape, const float* weight, const float* grad_output, float* grad_input,
                          float* workspace) {
    validate("conv2d_backward_data", shape);
    const int threads = omp_get_max_threads();
    const int64_t rows = column_rows(shape), count = positions(shape), columns_size = column_floats(shape);
    const int64_t input_sample = shape.in_channels * shape.in_height * shape.in_width;
    const int64_t output_sample = shape.out_channels * count;

    // For a pointwise conv the GEMM accumulates straight into grad_input.
    auto multiply = [&](int64_t n, float* columns) {
        const float* grad_out = grad_output + n * output_sample;
        if (is_pointwise(shape))
            gemm(true, false, rows, count, shape.out_channels, 1.0f, weight, rows, grad_out, count, 1.0f,
                 grad_input + n * input_sample, count);
        else
            gemm(true, false, rows, count, shape.out_channels, 1.0f, weight, rows, grad_out, count, 0.0f, columns,
                 count);
    };

    if (split_over_samples(shape, threads)) {
#pragma omp parallel num_threads(threads) if (worth_threads(shape))
        {
            float* columns = workspace + omp_get_thread_num() * columns_size;
#pragma omp for schedule(static)
            for (int64_t n = 0; n < shape.batch; ++n) {
                multiply(n, columns);
                if (!is_pointwise(shape))
                    detail::col2im_accumulate(shape, columns, grad_input + n * input_sample, 0, shape.in_channels);
            }
        }
    } else {
        for (int64_t n = 0; n < shape.batch; ++n) {
            multiply(n, workspace);
            if (is_pointwise(shape)) continue;
            float* grad_in = grad_input + n * input_sample;
#pragma omp parallel for schedule(static)
            for (int64_t c = 0; c < shape.in_channels; ++c)
                detail::col2im_accumulate(shape, workspace, grad_in, c, c + 1);
        }
    }
}

// The weight gradient is a sum over samples. batch >= T: a static schedule
// gives thread t a fixed contiguous run of samples; thread 0 accumulates into
// grad_weight itself, thread t > 0 into partial t of the workspace, and the
// partials are then added in thread order (split over weight elements), so
// the result depends on T but not on timing. batch < T: one multi-threaded
// GEMM per sample, in sample order. The bias gradient is a per-channel sum in
// a fixed order that does not depend on T at all: each sample's channel sums
// are taken by whichever thread handles the sample, right after its GEMM read
// that sample's grad_output (so it is read from cache, not from memory a second
// time), and kept per sample; the sum over samples then runs in sample order.
void conv2d_backward_filter(const Conv2dShape& shape, const float* input, const float* grad_output, float* grad_weight,
                            float* grad_bias, float* workspace) {
    validate("conv2d_backward_filter", shape);
    const int threads = omp_get_max_threads();
    const int64_t rows = column_rows(shape), count = positions(shape), columns_size = column_floats(shape);
    const int64_t input_sample = shape.in_channels * shape.in_height * shape.in_width;
    const int64_t output_sample = shape.out_channels * count;
    const int64_t weight_size = shape.weight_size();

    float* partials = workspace + threads * columns_size;
    float* sample_bias_sums = partials + (threads - 1) * weight_size;  // [batch, out_channels]
    auto multiply = [&](int64_t n, const float* columns, float* gradient) {
        const float* grad_out = grad_output + n * output_sample;
        gemm(false, true, shape.out_channels, rows, count, 1.0f, grad_out, count, columns_of(shape, input, n, columns),
             count, 1.0f, gradient, rows);
        if (grad_bias != nullptr)
            for (int64_t c = 0; c < shape.out_channels; ++c)
                sample_bias_sums[n * shape.out_channels + c] = sum_floats(grad_out + c * count, count);
    };

    if (split_over_samples(shape, threads)) {
#pragma omp parallel num_threads(threads) if (worth_threads(shape))
        {
            const int thread = omp_get_thread_num();
            const int team = omp_get_num_threads();
            float* columns = workspace + thread * columns_size;
            float* gradient = thread == 0 ? grad_weight : partials + (thread - 1) * weight_size;
            if (thread > 0) std::fill(gradient, gradient + weight_size, 0.0f);
#pragma omp for schedule(static)
            for (int64_t n = 0; n < shape.batch; ++n) {
                if (!is_pointwise(shape)) detail::im2col(shape, input + n * input_sample, columns, 0, rows);
                multiply(n, columns, gradient);
            }
            // The implicit barrier above: every partial is complete here.
#pragma omp for schedule(static)
            for (int64_t i = 0; i < weight_size; ++i) {
                float sum = grad_weight[i];
                for (int t = 1; t < team; ++t) sum += partials[(t - 1) * weight_size + i];
                grad_weight[i] = sum;
            }
        }
    } else {
        for (int64_t n = 0; n < shape.batch; ++n) {
            if (!is_pointwise(shape)) im2col_all_threads(shape, input + n * input_sample, workspace);
            multiply(n, workspace, grad_weight);
        }
    }

    // The bias gradient: each sample's channel sum in float, the sum over
    // samples in double.
    if (grad_bias == nullptr) return;
    for (int64_t c = 0; c < shape.out_channels; ++c) {
        double total = 0.0;
        for (int64_t n = 0; n < shape.batch; ++n) total += sample_bias_sums[n * shape.out_channels + c];
        grad_bias[c] += static_cast<float>(total);
    }
}

}  // namespace ladon::cpu
