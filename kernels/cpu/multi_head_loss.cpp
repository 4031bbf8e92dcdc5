// The fused multi-head loss on the CPU: every head's mean loss and its weighted
// logit gradient in one call, PyTorch's 'mean' reduction over present samples.
//
// Each head is one serial pass over its rows in row order, with the loss summed
// in double: a head is at most a few thousand logits, so threads would cost more
// than they save, and the fixed order makes the loss bit-for-bit reproducible.
// Missing samples (mask == 0) are skipped entirely, targets included, so a
// dataset may store anything (-1, NaN) as the label of a missing sample.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>

#include "kernels/ops.hpp"
#include "ladon/error.hpp"

namespace ladon::cpu {
namespace {

bool is_present(const LossHead& head, int64_t sample) { return head.mask == nullptr || head.mask[sample] != 0.0f; }

void validate_head(const LossHead& head, std::size_t index) {
    auto fail = [&](const std::string& what) {
        throw Error("multi_head_loss: head " + std::to_string(index) + ": " + what);
    };
    if (head.width < 1) fail("width is " + std::to_string(head.width) + ", expected at least 1");
    if (head.logits == nullptr || head.targets == nullptr || head.grad_logits == nullptr)
        fail("logits, targets and grad_logits must all be set");
    if (head.kind == LossKind::softmax_cross_entropy && !(head.label_smoothing >= 0.0f && head.label_smoothing < 1.0f))
        fail("label_smoothing is " + std::to_string(head.label_smoothing) + ", expected a value in [0, 1)");
    if (head.kind == LossKind::smooth_l1 && !(head.beta > 0.0f))
        fail("beta is " + std::to_string(head.beta) + ", expected a value > 0");
}

int64_t class_index(const LossHead& head, std::size_t index, int64_t sample) {
    const float target = head.targets[sample];
    // Range first: converting NaN or a huge float to an integer is undefined.
    const bool in_range = target >= 0.0f && target < static_cast<float>(head.width);
    if (!in_range || std::floor(target) != target)
        throw Error("multi_head_loss: head " + std::to_string(index) + ", sample " + std::to_string(sample) +
                    ": class index " + std::to_string(target) + ", expected an integer in [0, " +
                    std::to_string(head.width) + ")");
    return static_cast<int64_t>(target);
}

// Loss of one row: -sum_j q_j log softmax_j with q = (1 - eps) onehot + eps / width,
// which is logsumexp(x) - sum_j q_j x_j. The gradient is softmax - q. The
// maximum is subtracted before exp, so logits of 1e4 stay finite.
double softmax_cross_entropy_row(const float* logits, int64_t width, int64_t label, double smoothing, double grad_scale,
                                 float* grad) {
    double max_logit = logits[0];
    for (int64_t j = 1; j < width; ++j) max_logit = std::max(max_logit, double(logits[j]));
    double exp_sum = 0.0;
    for (int64_t j = 0; j < width; ++j) exp_sum += std::exp(double(logits[j]) - max_logit);
    const double log_sum_exp = max_logit + std::log(exp_sum);

    const double off_target = smoothing / double(width);
    const double on_target = 1.0 - smoothing + off_target;
    double target_dot_logits = 0.0;
    for (int64_t j = 0; j < width; ++j) {
        const double q = j == label ? on_target : off_target;
        target_dot_logits += q * double(logits[j]);
        const double softmax = std::exp(double(logits[j]) - log_sum_exp);
        grad[j] = static_cast<float>(grad_scale * (softmax - q));
    }
    return log_sum_exp - target_dot_logits;
}

// BCEWithLogits in its stable form: max(x, 0) - x t + log(1 + exp(-|x|));
// the gradient sigmoid(x) - t, with sigmoid evaluated on exp(-|x|) <= 1.
double sigmoid_binary_cross_entropy_row(const float* logits, const float* targets, int64_t width, double grad_scale,
                                        float* grad) {
    double sum = 0.0;
    for (int64_t j = 0; j < width; ++j) {
        const double x = logits[j], t = targets[j];
        const double exp_negative_abs = std::exp(-std::abs(x));
        sum += std::max(x, 0.0) - x * t + std::log1p(exp_negative_abs);
        const double sigmoid = x >= 0.0 ? 1.0 / (1.0 + exp_negative_abs) : exp_negative_abs / (1.0 + exp_negative_abs);
        grad[j] = static_cast<float>(grad_scale * (sigmoid - t));
    }
    return sum;
}

double mean_squared_error_row(const float* logits, const float* targets, int64_t width, double grad_scale,
                              float* grad) {
    double sum = 0.0;
    for (int64_t j = 0; j < width; ++j) {
        const double difference = double(logits[j]) - double(targets[j]);
        sum += difference * difference;
        grad[j] = static_cast<float>(grad_scale * 2.0 * difference);
    }
    return sum;
}

// Huber as PyTorch's SmoothL1Loss(beta): quadratic inside |d| < beta, linear
// outside, continuous in value and slope at |d| = beta.
double smooth_l1_row(const float* logits, const float* targets, int64_t width, double beta, double grad_scale,
                     float* grad) {
    double sum = 0.0;
    for (int64_t j = 0; j < width; ++j) {
        const double difference = double(logits[j]) - double(targets[j]);
        const double magnitude = std::abs(difference);
        double slope;
        if (magnitude < beta) {
            sum += 0.5 * difference * difference / beta;
            slope = difference / beta;
        } else {
            sum += magnitude - 0.5 * beta;
            slope = difference > 0.0 ? 1.0 : -1.0;
        }
        grad[j] = static_cast<float>(grad_scale * slope);
    }
    return sum;
}

// Returns the head's unweighted mean loss and overwrites its gradient.
float head_loss(int64_t batch, const LossHead& head, std::size_t index) {
    const int64_t width = head.width;
    int64_t present = 0;
    for (int64_t sample = 0; sample < batch; ++sample) present += is_present(head, sample) ? 1 : 0;
    if (present == 0) {
        std::fill_n(head.grad_logits, batch * width, 0.0f);
        return 0.0f;
    }
    // Softmax CE averages per sample, the elementwise kinds per element.
    const double denominator = double(present) * (head.kind == LossKind::softmax_cross_entropy ? 1.0 : double(width));
    const double grad_scale = double(head.weight) / denominator;

    double loss_sum = 0.0;
    for (int64_t sample = 0; sample < batch; ++sample) {
        const float* logits = head.logits + sample * width;
        float* grad = head.grad_logits + sample * width;
        if (!is_present(head, sample)) {
            std::fill_n(grad, width, 0.0f);
            continue;
        }
        switch (head.kind) {
            case LossKind::softmax_cross_entropy:
                loss_sum += softmax_cross_entropy_row(logits, width, class_index(head, index, sample),
                                                      head.label_smoothing, grad_scale, grad);
                break;
            case LossKind::sigmoid_binary_cross_entropy:
                loss_sum +=
                    sigmoid_binary_cross_entropy_row(logits, head.targets + sample * width, width, grad_scale, grad);
                break;
            case LossKind::mean_squared_error:
                loss_sum += mean_squared_error_row(logits, head.targets + sample * width, width, grad_scale, grad);
                break;
            case LossKind::smooth_l1:
                loss_sum += smooth_l1_row(logits, head.targets + sample * width, width, head.beta, grad_scale, grad);
                break;
            default:
                throw Error("multi_head_loss: head " + std::to_string(index) + ": unknown loss kind " +
                            std::to_string(static_cast<int32_t>(head.kind)));
        }
    }
    return static_cast<float>(loss_sum / denominator);
}

}  // namespace

void multi_head_loss(int64_t batch, std::span<const LossHead> heads, float* head_losses) {
    if (batch < 0) throw Error("multi_head_loss: batch is " + std::to_string(batch) + ", expected at least 0");
    for (std::size_t h = 0; h < heads.size(); ++h) validate_head(heads[h], h);
    for (std::size_t h = 0; h < heads.size(); ++h) head_losses[h] = head_loss(batch, heads[h], h);
}

}  // namespace ladon::cpu
