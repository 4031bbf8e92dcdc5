// Metric formulas: ROC AUC and box IoU against hand-computed values.
#include <gtest/gtest.h>

#include "engine/metrics.hpp"

namespace {

using ladon::engine::box_iou;
using ladon::engine::roc_auc;

TEST(EngineMetrics, RocAucOfPerfectlySeparatedScoresIsOne) {
    EXPECT_DOUBLE_EQ(roc_auc({{0.1f, false}, {0.9f, true}, {0.2f, false}, {0.7f, true}}), 1.0);
    EXPECT_DOUBLE_EQ(roc_auc({{0.1f, true}, {0.9f, false}}), 0.0);
}

TEST(EngineMetrics, RocAucCountsTiesAsHalfAndMatchesPairCounting) {
    // positives 0.4, 0.8; negatives 0.4, 0.1, 0.9: pairs won 1 (0.4 vs 0.1) + 0.5 (tie)
    // + 2 (0.8 beats 0.4 and 0.1) = 3.5 of 6.
    EXPECT_DOUBLE_EQ(roc_auc({{0.4f, true}, {0.8f, true}, {0.4f, false}, {0.1f, false}, {0.9f, false}}), 3.5 / 6.0);
}

TEST(EngineMetrics, RocAucWithOneClassOnlyIsOneHalf) {
    EXPECT_DOUBLE_EQ(roc_auc({{0.4f, true}, {0.8f, true}}), 0.5);
    EXPECT_DOUBLE_EQ(roc_auc({}), 0.5);
}

TEST(EngineMetrics, BoxIouOfOverlappingDisjointAndEmptyBoxes) {
    const float a[4] = {0.0f, 0.0f, 2.0f, 2.0f}, b[4] = {1.0f, 1.0f, 3.0f, 3.0f}, c[4] = {5, 5, 6, 6},
                empty[4] = {1, 1, 1, 1};
    EXPECT_DOUBLE_EQ(box_iou(a, b), 1.0 / 7.0);
    EXPECT_DOUBLE_EQ(box_iou(a, a), 1.0);
    EXPECT_DOUBLE_EQ(box_iou(a, c), 0.0);
    EXPECT_DOUBLE_EQ(box_iou(empty, empty), 0.0);
}

}  // namespace
