#include "engine/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "ladon/error.hpp"

namespace ladon::engine {

double roc_auc(std::vector<std::pair<float, bool>> scores) {
    std::sort(scores.begin(), scores.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    // Mann-Whitney U: sum of the positives' ranks, tied scores sharing the
    // average of their ranks.
    double positives = 0, rank_sum = 0;
    for (std::size_t i = 0; i < scores.size();) {
        std::size_t j = i;
        while (j < scores.size() && scores[j].first == scores[i].first) ++j;
        const double average_rank = 0.5 * double(i + 1 + j);
        for (std::size_t k = i; k < j; ++k)
            if (scores[k].second) {
                positives += 1;
                rank_sum += average_rank;
            }
        i = j;
    }
    const double negatives = double(scores.size()) - positives;
    if (positives == 0 || negatives == 0) return 0.5;
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

double box_iou(const float* a, const float* b) {
    const double w = std::min(a[2], b[2]) - std::max(a[0], b[0]);
    const double h = std::min(a[3], b[3]) - std::max(a[1], b[1]);
    const double intersection = w > 0 && h > 0 ? w * h : 0.0;
    const double area_a = std::max(0.0f, a[2] - a[0]) * double(std::max(0.0f, a[3] - a[1]));
    const double area_b = std::max(0.0f, b[2] - b[0]) * double(std::max(0.0f, b[3] - b[1]));
    const double union_area = area_a + area_b - intersection;
    return union_area > 0 ? intersection / union_area : 0.0;
}

MetricAccumulator::MetricAccumulator(const Graph& graph, bool detailed) : graph_(graph), detailed_(detailed) {
    reset();
}

void MetricAccumulator::reset() {
    const std::size_t heads = graph_.heads.size();
    for (auto* v : {&loss_sum_, &loss_count_, &metric_sum_, &metric_count_, &top5_sum_, &squared_sum_, &iou_sum_,
                    &iou_count_})
        v->assign(heads, 0.0);
    scores_.assign(detailed_ ? heads : 0, {});
}

void MetricAccumulator::add(Executor& executor, const Batch& batch_in) {
    const int64_t batch = executor.batch();
    for (std::size_t h = 0; h < graph_.heads.size(); ++h) {
        const Head& head = graph_.heads[h];
        const float* out = executor.head_output(int(h));
        const float* targets = batch_in.targets(int(h));
        const float* mask = batch_in.mask(int(h));
        const int64_t width = head.width;
        double present = 0.0;
        for (int64_t row = 0; row < batch; ++row) {
            if (mask[row] == 0.0f) continue;
            present += 1.0;
            const float* logits = out + row * width;
            switch (head.spec.loss) {
                case Loss::softmax_cross_entropy: {
                    const auto target = int64_t(targets[row]);
                    int64_t best = 0, above = 0;
                    for (int64_t j = 0; j < width; ++j) {
                        if (logits[j] > logits[best]) best = j;
                        if (target >= 0 && target < width && logits[j] > logits[target]) ++above;
                    }
                    metric_sum_[h] += best == target ? 1.0 : 0.0;
                    metric_count_[h] += 1.0;
                    top5_sum_[h] += above < 5 ? 1.0 : 0.0;
                    break;
                }
                case Loss::sigmoid_binary_cross_entropy:
                    for (int64_t j = 0; j < width; ++j) {
                        const bool label = targets[row * width + j] > 0.5f;
                        metric_sum_[h] += (logits[j] > 0.0f) == label ? 1.0 : 0.0;
                        if (detailed_) scores_[h].emplace_back(logits[j], label);
                    }
                    metric_count_[h] += double(width);
                    break;
                case Loss::mean_squared_error:
                case Loss::smooth_l1:
                    for (int64_t j = 0; j < width; ++j) {
                        const double difference = double(logits[j]) - double(targets[row * width + j]);
                        metric_sum_[h] += std::abs(difference);
                        squared_sum_[h] += difference * difference;
                    }
                    metric_count_[h] += double(width);
                    if (width == 4) {
                        iou_sum_[h] += box_iou(logits, targets + row * width);
                        iou_count_[h] += 1.0;
                    }
                    break;
            }
        }
        loss_sum_[h] += double(executor.head_losses()[h]) * present;
        loss_count_[h] += present;
    }
}

std::vector<double> MetricAccumulator::totals() const {
    std::vector<double> packed;
    for (const auto* v :
         {&loss_sum_, &loss_count_, &metric_sum_, &metric_count_, &top5_sum_, &squared_sum_, &iou_sum_, &iou_count_})
        packed.insert(packed.end(), v->begin(), v->end());
    return packed;
}

void MetricAccumulator::set_totals(std::span<const double> totals) {
    const std::size_t heads = graph_.heads.size();
    if (totals.size() != 8 * heads)
        throw Error(fmt::format("metrics: {} totals for {} heads, expected {}", totals.size(), heads, 8 * heads));
    std::size_t offset = 0;
    for (auto* v :
         {&loss_sum_, &loss_count_, &metric_sum_, &metric_count_, &top5_sum_, &squared_sum_, &iou_sum_, &iou_count_}) {
        v->assign(totals.begin() + offset, totals.begin() + offset + heads);
        offset += heads;
    }
}

std::vector<TaskMetric> MetricAccumulator::result() const {
    std::vector<TaskMetric> metrics;
    for (std::size_t h = 0; h < graph_.heads.size(); ++h) {
        const Head& head = graph_.heads[h];
        const Loss loss = head.spec.loss;
        const bool regression = loss == Loss::mean_squared_error || loss == Loss::smooth_l1;
        TaskMetric metric;
        metric.task = head.spec.name;
        metric.metric = regression ? "mae" : "accuracy";
        metric.loss = loss_count_[h] > 0 ? loss_sum_[h] / loss_count_[h] : 0.0;
        const double count = metric_count_[h];
        metric.value = count > 0 ? metric_sum_[h] / count : 0.0;
        if (detailed_ && count > 0) {
            if (loss == Loss::softmax_cross_entropy && head.width > 5)
                metric.extra.emplace_back("top5", top5_sum_[h] / count);
            if (loss == Loss::sigmoid_binary_cross_entropy) metric.extra.emplace_back("auc", roc_auc(scores_[h]));
            if (regression) metric.extra.emplace_back("rmse", std::sqrt(squared_sum_[h] / count));
            if (regression && iou_count_[h] > 0) metric.extra.emplace_back("iou", iou_sum_[h] / iou_count_[h]);
        }
        metrics.push_back(std::move(metric));
    }
    return metrics;
}

}  // namespace ladon::engine
