// The fused multi-head loss on a GPU or the emulator against the CPU op: every
// loss kind in one launch on odd widths (1, 3, 10, 33 > a warp), masks with
// missing samples, all-masked heads, label smoothing, logits of +-1e4 and
// weights != 1; then bitwise determinism over repeated calls and fiber orders.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.hpp"
#include "kernels/cuda/multi_head_loss.hpp"
#include "kernels/ops.hpp"

namespace ladon {
namespace {

using cuda_test::DeviceBuffer;
using ops::LossHead;
using ops::LossKind;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// One head's host data; the descriptor is built per backend.
struct HeadData {
    LossKind kind = LossKind::softmax_cross_entropy;
    int64_t width = 1;
    float weight = 1.0f;
    float label_smoothing = 0.0f;
    float beta = 1.0f;
    std::vector<float> logits, targets, mask;  // mask empty = all present
};

enum class MaskPattern { none, some_missing, all_missing };

HeadData make_head(std::mt19937& random, int64_t batch, LossKind kind, int64_t width, MaskPattern mask_pattern,
                   bool huge_logits) {
    HeadData head;
    head.kind = kind;
    head.width = width;
    std::normal_distribution<float> normal(0.0f, 2.0f);
    head.logits.resize(batch * width);
    for (float& logit : head.logits) logit = normal(random);
    if (huge_logits)  // every 5th row gets a +1e4 and a -1e4: the stable forms must hold
        for (int64_t row = 0; row < batch; row += 5) {
            head.logits[row * width] = 1e4f;
            head.logits[row * width + width - 1] = -1e4f;
        }
    if (mask_pattern != MaskPattern::none) {
        head.mask.assign(batch, 1.0f);
        for (int64_t row = 0; row < batch; ++row)
            if (mask_pattern == MaskPattern::all_missing || row % 3 == 1) head.mask[row] = 0.0f;
    }
    if (kind == LossKind::softmax_cross_entropy) {
        head.targets.resize(batch);
        for (int64_t row = 0; row < batch; ++row) {
            const bool missing = !head.mask.empty() && head.mask[row] == 0.0f;
            // A missing sample's label is never read: store garbage there.
            head.targets[row] = missing ? (row % 2 ? -1.0f : kNaN) : float(random() % uint32_t(width));
        }
    } else {
        head.targets.resize(batch * width);
        std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
        for (float& target : head.targets)
            target = kind == LossKind::sigmoid_binary_cross_entropy ? float(random() % 2) : uniform(random);
    }
    return head;
}

std::vector<HeadData> every_kind_on_odd_shapes(int64_t batch) {
    std::mt19937 random(20261129);
    std::vector<HeadData> heads;
    heads.push_back(make_head(random, batch, LossKind::softmax_cross_entropy, 10, MaskPattern::some_missing, true));
    heads.back().label_smoothing = 0.1f;
    heads.back().weight = 0.7f;
    heads.push_back(make_head(random, batch, LossKind::softmax_cross_entropy, 33, MaskPattern::none, true));
    heads.back().weight = 1.5f;
    heads.push_back(make_head(random, batch, LossKind::softmax_cross_entropy, 1, MaskPattern::none, false));
    heads.push_back(
        make_head(random, batch, LossKind::sigmoid_binary_cross_entropy, 3, MaskPattern::some_missing, true));
    heads.back().weight = 0.5f;
    heads.push_back(make_head(random, batch, LossKind::sigmoid_binary_cross_entropy, 33, MaskPattern::none, false));
    heads.push_back(make_head(random, batch, LossKind::mean_squared_error, 1, MaskPattern::some_missing, false));
    heads.back().weight = 2.0f;
    heads.push_back(make_head(random, batch, LossKind::smooth_l1, 33, MaskPattern::some_missing, false));
    heads.back().beta = 0.5f;
    heads.back().weight = 1.3f;
    heads.push_back(make_head(random, batch, LossKind::smooth_l1, 3, MaskPattern::none, true));
    heads.push_back(make_head(random, batch, LossKind::softmax_cross_entropy, 10, MaskPattern::all_missing, false));
    heads.push_back(make_head(random, batch, LossKind::mean_squared_error, 3, MaskPattern::all_missing, false));
    return heads;
}

struct LossResult {
    std::vector<float> losses;
    std::vector<std::vector<float>> grads;
};

LossResult run_cpu(int64_t batch, const std::vector<HeadData>& data) {
    LossResult result{std::vector<float>(data.size()), {}};
    std::vector<LossHead> heads;
    for (const HeadData& d : data) result.grads.emplace_back(d.logits.size(), kNaN);
    for (std::size_t h = 0; h < data.size(); ++h) {
        const HeadData& d = data[h];
        heads.push_back(LossHead{d.kind, d.width, d.logits.data(), d.targets.data(),
                                 d.mask.empty() ? nullptr : d.mask.data(), d.weight, d.label_smoothing, d.beta,
                                 result.grads[h].data()});
    }
    cpu::multi_head_loss(batch, heads, result.losses.data());
    return result;
}

// Device copies of the inputs, gradients left as cudaMalloc's NaN fill so an
// element the kernel forgets to overwrite shows.
class DeviceLoss {
public:
    DeviceLoss(int64_t batch, const std::vector<HeadData>& data)
        : batch_(batch), losses_(data.size()), scratch_(cuda::multi_head_loss_scratch_bytes(batch, int(data.size()))) {
        std::vector<LossHead> heads;
        for (const HeadData& d : data) {
            logits_.emplace_back(d.logits);
            targets_.emplace_back(d.targets);
            masks_.emplace_back(d.mask.empty() ? std::vector<float>{0.0f} : d.mask);
            grads_.emplace_back(d.logits.size());
            heads.push_back(LossHead{d.kind, d.width, logits_.back().get(), targets_.back().get(),
                                     d.mask.empty() ? nullptr : masks_.back().get(), d.weight, d.label_smoothing,
                                     d.beta, grads_.back().get()});
        }
        heads_ = std::make_unique<DeviceBuffer<LossHead>>(heads);
        scratch_.zero();  // once, as the API asks
    }

    LossResult run() {
        EXPECT_CUDA_SUCCESS(
            cuda::multi_head_loss(batch_, heads_->get(), int(heads_->size()), losses_.get(), scratch_.get(), nullptr));
        LossResult result{losses_.download(), {}};
        for (const auto& grad : grads_) result.grads.push_back(grad.download());
        return result;
    }

private:
    int64_t batch_;
    std::deque<DeviceBuffer<float>> logits_, targets_, masks_, grads_;
    std::unique_ptr<DeviceBuffer<LossHead>> heads_;
    DeviceBuffer<float> losses_;
    DeviceBuffer<unsigned char> scratch_;
};

void expect_close(const LossResult& expected, const LossResult& actual) {
    ASSERT_EQ(expected.losses.size(), actual.losses.size());
    for (std::size_t h = 0; h < expected.losses.size(); ++h) {
        EXPECT_NEAR(expected.losses[h], actual.losses[h], 1e-5 * std::abs(expected.losses[h]) + 1e-12)
            << "loss of head " << h;
        double max_error = 0.0;
        std::size_t worst = 0;
        for (std::size_t i = 0; i < expected.grads[h].size(); ++i) {
            const double e = expected.grads[h][i], a = actual.grads[h][i];
            const double error = std::isnan(a) ? INFINITY : std::abs(e - a) / (1e-5 * std::abs(e) + 1e-12);
            if (error > max_error) max_error = error, worst = i;
        }
        EXPECT_LE(max_error, 1.0) << "gradient of head " << h << " at " << worst << ": expected "
                                  << expected.grads[h][worst] << ", got " << actual.grads[h][worst];
    }
}

bool bitwise_equal(const LossResult& a, const LossResult& b) {
    if (std::memcmp(a.losses.data(), b.losses.data(), a.losses.size() * sizeof(float)) != 0) return false;
    for (std::size_t h = 0; h < a.grads.size(); ++h)
        if (std::memcmp(a.grads[h].data(), b.grads[h].data(), a.grads[h].size() * sizeof(float)) != 0) return false;
    return true;
}

class CudaLoss : public cuda_test::DeviceTest {};

TEST_F(CudaLoss, EveryKindInOneLaunchMatchesCpuOnOddShapesWithMasksAndHugeLogits) {
    const int64_t batch = 37;  // two row blocks
    const std::vector<HeadData> data = every_kind_on_odd_shapes(batch);
    const LossResult expected = run_cpu(batch, data);
    DeviceLoss device(batch, data);
    const LossResult actual = device.run();
    expect_close(expected, actual);
    // The all-masked heads: loss 0, gradient 0 (not left as NaN).
    for (std::size_t h = data.size() - 2; h < data.size(); ++h) {
        EXPECT_EQ(0.0f, actual.losses[h]);
        for (float g : actual.grads[h]) ASSERT_EQ(0.0f, g) << "head " << h;
    }
    for (float loss : actual.losses) EXPECT_TRUE(std::isfinite(loss));
}

TEST_F(CudaLoss, ManyRowBlocksSumTheirPartialsLikeTheCpu) {
    const int64_t batch = 301;  // ten row blocks, the last one partial
    std::mt19937 random(7);
    std::vector<HeadData> data;
    data.push_back(make_head(random, batch, LossKind::softmax_cross_entropy, 33, MaskPattern::some_missing, true));
    data.back().label_smoothing = 0.2f;
    data.push_back(make_head(random, batch, LossKind::smooth_l1, 3, MaskPattern::some_missing, false));
    DeviceLoss device(batch, data);
    expect_close(run_cpu(batch, data), device.run());
}

TEST_F(CudaLoss, RepeatedCallsAndBothFiberOrdersGiveBitwiseIdenticalResults) {
    const int64_t batch = 37;
    const std::vector<HeadData> data = every_kind_on_odd_shapes(batch);
    DeviceLoss device(batch, data);
    const LossResult first = device.run();
    EXPECT_TRUE(bitwise_equal(first, device.run())) << "second call differs (arrival counters not reset?)";
    cuda_test::for_each_schedule([&](const std::string& schedule) {
        EXPECT_TRUE(bitwise_equal(first, device.run())) << schedule << ": differs";
    });
}

TEST_F(CudaLoss, InvalidLabelOfPresentSampleMakesHeadLossNanWithoutFault) {
    const int64_t batch = 5;
    std::mt19937 random(3);
    std::vector<HeadData> data;
    data.push_back(make_head(random, batch, LossKind::softmax_cross_entropy, 10, MaskPattern::none, false));
    data.back().targets[2] = 10.0f;  // one past the last class: the CPU op throws, the kernel cannot
    data.push_back(make_head(random, batch, LossKind::mean_squared_error, 3, MaskPattern::none, false));
    DeviceLoss device(batch, data);
    const LossResult actual = device.run();
    EXPECT_TRUE(std::isnan(actual.losses[0]));
    for (int64_t j = 0; j < 10; ++j) EXPECT_EQ(0.0f, actual.grads[0][2 * 10 + j]);
    EXPECT_TRUE(std::isfinite(actual.grads[0][0]));
    EXPECT_TRUE(std::isfinite(actual.losses[1])) << "other heads are unaffected";
}

TEST_F(CudaLoss, EmptyBatchGivesZeroLosses) {
    std::mt19937 random(1);
    std::vector<HeadData> data;
    data.push_back(make_head(random, 0, LossKind::softmax_cross_entropy, 4, MaskPattern::none, false));
    data.back().logits.push_back(0.0f);  // cudaMalloc of 0 bytes aside, the kernel never reads it
    data.back().targets.push_back(0.0f);
    DeviceLoss device(0, data);
    EXPECT_EQ(0.0f, device.run().losses[0]);
}

}  // namespace
}  // namespace ladon
