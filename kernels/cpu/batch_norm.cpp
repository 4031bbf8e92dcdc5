// Batch normalisation over [batch, channels, spatial], statistics per channel
// across batch x spatial, with PyTorch's semantics: the biased variance
// normalises, the unbiased one updates running_var.
//
// Parallel decomposition: one thread owns a whole channel, so each channel's
// sums run in one fixed order (n, then s) on one thread. The results are the
// same bit for bit for any thread count. Sums are kept in double: a channel can
// hold batch x H x W = millions of values, where a float sum loses digits.
//
// The fused training functions and the split ones (synchronised batch norm:
// partial sums, then the caller's sum over ranks, then apply) run the same
// per-channel steps below, so with nothing added between the steps the split
// functions give the fused results bit for bit.
#include <cmath>
#include <cstdint>

#include "kernels/ops.hpp"

namespace ladon::cpu {
namespace {

// Channel c of sample n is the contiguous run x[(n * channels + c) * spatial ...].
constexpr int64_t plane_offset(const BatchNormShape& shape, int64_t n, int64_t c) {
    return (n * shape.channels + c) * shape.spatial;
}

double channel_sum(const BatchNormShape& shape, const float* x, int64_t c) {
    double sum = 0.0;
    for (int64_t n = 0; n < shape.batch; ++n) {
        const float* plane = x + plane_offset(shape, n, c);
        for (int64_t s = 0; s < shape.spatial; ++s) sum += plane[s];
    }
    return sum;
}

// Two passes (mean, then squared deviations) rather than E[x^2] - E[x]^2,
// which cancels catastrophically when |mean| >> std.
double channel_squared_deviations(const BatchNormShape& shape, const float* x, int64_t c, double mean) {
    double squared_deviations = 0.0;
    for (int64_t n = 0; n < shape.batch; ++n) {
        const float* plane = x + plane_offset(shape, n, c);
        for (int64_t s = 0; s < shape.spatial; ++s) {
            const double deviation = double(plane[s]) - mean;
            squared_deviations += deviation * deviation;
        }
    }
    return squared_deviations;
}

// y, the saved statistics and the running statistics of channel c, from the
// mean and the squared deviations of `count` values.
void channel_normalise(const BatchNormShape& shape, int64_t count, const float* x, const float* gamma,
                       const float* beta, int64_t c, double mean, double squared_deviations, float* y,
                       float* saved_mean, float* saved_inv_std, float* running_mean, float* running_var) {
    // A single value per channel has no unbiased variance (PyTorch refuses to
    // train on it); keep the biased one (0) rather than write NaN into the
    // running statistics.
    const double unbiased_factor = count > 1 ? double(count) / double(count - 1) : 1.0;
    const double variance = squared_deviations / double(count);
    const double inv_std = 1.0 / std::sqrt(variance + double(shape.epsilon));

    // y = (x - mean_float) * scale + shift. x - mean_float is exact in
    // float for x near the mean (Sterbenz), and the part of the mean that
    // float rounding drops goes into the shift, in double. Folding the
    // whole mean into the shift (scale * x + shift) would cancel when
    // |mean| >> std.
    const float mean_float = float(mean);
    const double mean_residual = mean - double(mean_float);
    const double gamma_inv_std = double(gamma[c]) * inv_std;
    const float scale = float(gamma_inv_std);
    const float shift = float(double(beta[c]) - mean_residual * gamma_inv_std);
    for (int64_t n = 0; n < shape.batch; ++n) {
        const int64_t offset = plane_offset(shape, n, c);
        for (int64_t s = 0; s < shape.spatial; ++s) y[offset + s] = (x[offset + s] - mean_float) * scale + shift;
    }

    saved_mean[c] = mean_float;
    saved_inv_std[c] = float(inv_std);
    const double momentum = shape.momentum;
    running_mean[c] = float((1.0 - momentum) * running_mean[c] + momentum * mean);
    running_var[c] = float((1.0 - momentum) * running_var[c] + momentum * variance * unbiased_factor);
}

// The backward pass's sums over channel c: sum(dy), sum(x - mean_float) and
// sum(dy * (x - mean_float)), with mean_float the saved (float) mean.
// Centring on it and then removing the residual mean of (x - mean_float), in
// double, recovers the exact centring that forward used (see there) in the
// same pass.
void channel_backward_sums(const BatchNormShape& shape, const float* x, const float* grad_y, int64_t c,
                           float mean_float, double& sum_grad, double& sum_centred, double& sum_grad_centred) {
    sum_grad = 0.0;
    sum_centred = 0.0;
    sum_grad_centred = 0.0;
    for (int64_t n = 0; n < shape.batch; ++n) {
        const int64_t offset = plane_offset(shape, n, c);
        for (int64_t s = 0; s < shape.spatial; ++s) {
            const double g = grad_y[offset + s];
            const double centred = x[offset + s] - mean_float;
            sum_grad += g;
            sum_centred += centred;
            sum_grad_centred += g * centred;
        }
    }
}

// d gamma and d beta from this batch's sums (`local_*`) and dx from the sums
// over all `count` values that the statistics came from (`total_*`); for one
// batch alone the two are the same.
void channel_backward_apply(const BatchNormShape& shape, int64_t count, const float* x, const float* grad_y,
                            const float* gamma, int64_t c, float mean_float, double inv_std, double local_sum_grad,
                            double local_sum_grad_centred, double total_sum_grad, double total_sum_centred,
                            double total_sum_grad_centred, float* grad_x, float* grad_gamma, float* grad_beta) {
    const double mean_residual = total_sum_centred / double(count);
    grad_beta[c] += float(local_sum_grad);
    grad_gamma[c] += float((local_sum_grad_centred - mean_residual * local_sum_grad) * inv_std);

    // dx = a * dy + b * (x - mean_float) + d, the per-channel constants
    // folded once in double.
    const double sum_grad_x_hat = (total_sum_grad_centred - mean_residual * total_sum_grad) * inv_std;
    const double factor = double(gamma[c]) * inv_std;
    const double mean_grad = total_sum_grad / double(count);
    const double mean_grad_x_hat = sum_grad_x_hat / double(count);
    const double slope = -factor * mean_grad_x_hat * inv_std;
    const float a = float(factor);
    const float b = float(slope);
    const float d = float(-factor * mean_grad - slope * mean_residual);
    for (int64_t n = 0; n < shape.batch; ++n) {
        const int64_t offset = plane_offset(shape, n, c);
        for (int64_t s = 0; s < shape.spatial; ++s)
            grad_x[offset + s] += a * grad_y[offset + s] + b * (x[offset + s] - mean_float) + d;
    }
}

}  // namespace

void batch_norm_forward_training(const BatchNormShape& shape, const float* x, const float* gamma, const float* beta,
                                 float* y, float* saved_mean, float* saved_inv_std, float* running_mean,
                                 float* running_var) {
    const int64_t per_channel = shape.batch * shape.spatial;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < shape.channels; ++c) {
        const double mean = channel_sum(shape, x, c) / double(per_channel);
        const double squared_deviations = channel_squared_deviations(shape, x, c, mean);
        channel_normalise(shape, per_channel, x, gamma, beta, c, mean, squared_deviations, y, saved_mean, saved_inv_std,
                          running_mean, running_var);
    }
}

void batch_norm_forward_sums(const BatchNormShape& shape, const float* x, double* sums) {
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < shape.channels; ++c) sums[c] = channel_sum(shape, x, c);
}

void batch_norm_forward_squared_deviations(const BatchNormShape& shape, int64_t count, const float* x,
                                           const double* sums, double* squared_deviations) {
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < shape.channels; ++c)
        squared_deviations[c] = channel_squared_deviations(shape, x, c, sums[c] / double(count));
}

void batch_norm_forward_apply(const BatchNormShape& shape, int64_t count, const float* x, const float* gamma,
                              const float* beta, const double* sums, const double* squared_deviations, float* y,
                              float* saved_mean, float* saved_inv_std, float* running_mean, float* running_var) {
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < shape.channels; ++c)
        channel_normalise(shape, count, x, gamma, beta, c, sums[c] / double(count), squared_deviations[c], y,
                          saved_mean, saved_inv_std, running_mean, running_var);
}

void batch_norm_forward_inference(const BatchNormShape& shape, const float* x, const float* gamma, const float* beta,
                                  const float* running_mean, const float* running_var, float* y) {
    // No reduction here, so the (sample, channel) planes are independent and
    // all of them are shared out, which keeps threads busy at small batch too.
    const int64_t planes = shape.batch * shape.channels;
#pragma omp parallel for schedule(static)
    for (int64_t plane = 0; plane < planes; ++plane) {
        const int64_t c = plane % shape.channels;
        const double inv_std = 1.0 / std::sqrt(double(running_var[c]) + double(shape.epsilon));
        const float mean = running_mean[c];
        const float scale = float(double(gamma[c]) * inv_std);
        const float shift = beta[c];
        const int64_t offset = plane * shape.spatial;
        for (int64_t s = 0; s < shape.spatial; ++s) y[offset + s] = (x[offset + s] - mean) * scale + shift;
    }
}

// With x_hat = (x - mean) * inv_std and m = batch * spatial values per channel:
//   d beta  = sum(dy)
//   d gamma = sum(dy * x_hat)
//   dx      = gamma * inv_std / m * (m * dy - sum(dy) - x_hat * sum(dy * x_hat))
// The last line is the gradient through the batch mean and variance too.
void batch_norm_backward(const BatchNormShape& shape, const float* x, const float* grad_y, const float* gamma,
                         const float* saved_mean, const float* saved_inv_std, float* grad_x, float* grad_gamma,
                         float* grad_beta) {
    const int64_t per_channel = shape.batch * shape.spatial;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < shape.channels; ++c) {
        double sum_grad = 0.0, sum_centred = 0.0, sum_grad_centred = 0.0;
        channel_backward_sums(shape, x, grad_y, c, saved_mean[c], sum_grad, sum_centred, sum_grad_centred);
        channel_backward_apply(shape, per_channel, x, grad_y, gamma, c, saved_mean[c], saved_inv_std[c], sum_grad,
                               sum_grad_centred, sum_grad, sum_centred, sum_grad_centred, grad_x, grad_gamma,
                               grad_beta);
    }
}

void batch_norm_backward_sums(const BatchNormShape& shape, const float* x, const float* grad_y, const float* saved_mean,
                              double* sums) {
    const int64_t channels = shape.channels;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < channels; ++c)
        channel_backward_sums(shape, x, grad_y, c, saved_mean[c], sums[c], sums[channels + c], sums[2 * channels + c]);
}

void batch_norm_backward_apply(const BatchNormShape& shape, int64_t count, const float* x, const float* grad_y,
                               const float* gamma, const float* saved_mean, const float* saved_inv_std,
                               const double* local_sums, const double* total_sums, float* grad_x, float* grad_gamma,
                               float* grad_beta) {
    const int64_t channels = shape.channels;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < channels; ++c)
        channel_backward_apply(shape, count, x, grad_y, gamma, c, saved_mean[c], saved_inv_std[c], local_sums[c],
                               local_sums[2 * channels + c], total_sums[c], total_sums[channels + c],
                               total_sums[2 * channels + c], grad_x, grad_gamma, grad_beta);
}

}  // namespace ladon::cpu
