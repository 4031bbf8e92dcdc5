// Batch normalisation over [batch, channels, spatial], statistics per channel
// across batch x spatial, with PyTorch's semantics: the biased variance
// normalises, the unbiased one updates running_var.
//
// Parallel decomposition: one thread owns a whole channel, so each channel's
// sums run in one fixed order (n, then s) on one thread. The results are the
// same bit for bit for any thread count. Sums are kept in double: a channel can
// hold batch x H x W = millions of values, where a float sum loses digits.
#include <cmath>
#include <cstdint>

#include "kernels/ops.hpp"

namespace ladon::cpu {
namespace {

// Channel c of sample n is the contiguous run x[(n * channels + c) * spatial ...].
constexpr int64_t plane_offset(const BatchNormShape& shape, int64_t n, int64_t c) {
    return (n * shape.channels + c) * shape.spatial;
}

}  // namespace

void batch_norm_forward_training(const BatchNormShape& shape, const float* x, const float* gamma, const float* beta,
                                 float* y, float* saved_mean, float* saved_inv_std, float* running_mean,
                                 float* running_var) {
    const int64_t per_channel = shape.batch * shape.spatial;
    // A single value per channel has no unbiased variance (PyTorch refuses to
    // train on it); keep the biased one (0) rather than write NaN into the
    // running statistics.
    const double unbiased_factor = per_channel > 1 ? double(per_channel) / double(per_channel - 1) : 1.0;

#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < shape.channels; ++c) {
        // Two passes (mean, then squared deviations) rather than E[x^2] - E[x]^2,
        // which cancels catastrophically when |mean| >> std.
        double sum = 0.0;
        for (int64_t n = 0; n < shape.batch; ++n) {
            const float* plane = x + plane_offset(shape, n, c);
            for (int64_t s = 0; s < shape.spatial; ++s) sum += plane[s];
        }
        const double mean = sum / double(per_channel);
        double squared_deviations = 0.0;
        for (int64_t n = 0; n < shape.batch; ++n) {
            const float* plane = x + plane_offset(shape, n, c);
            for (int64_t s = 0; s < shape.spatial; ++s) {
                const double deviation = double(plane[s]) - mean;
                squared_deviations += deviation * deviation;
            }
        }
        const double variance = squared_deviations / double(per_channel);
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
        // saved_mean is the mean rounded to float. Centring on it and then
        // removing the residual mean of (x - saved_mean), in double, recovers
        // the exact centring that forward used (see there) in the same pass.
        const float mean_float = saved_mean[c];
        const double inv_std = saved_inv_std[c];
        double sum_grad = 0.0;
        double sum_centred = 0.0;
        double sum_grad_centred = 0.0;
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
        const double mean_residual = sum_centred / double(per_channel);
        const double sum_grad_x_hat = (sum_grad_centred - mean_residual * sum_grad) * inv_std;
        grad_beta[c] += float(sum_grad);
        grad_gamma[c] += float(sum_grad_x_hat);

        // dx = a * dy + b * (x - mean_float) + d, the per-channel constants
        // folded once in double.
        const double factor = double(gamma[c]) * inv_std;
        const double mean_grad = sum_grad / double(per_channel);
        const double mean_grad_x_hat = sum_grad_x_hat / double(per_channel);
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
}

}  // namespace ladon::cpu
