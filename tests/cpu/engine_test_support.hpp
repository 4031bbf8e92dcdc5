#pragma once
// Models and batches shared by the engine suites (test_engine_*.cpp).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <vector>

#include "engine/cpu_executor.hpp"
#include "engine/graph.hpp"
#include "ladon/model.hpp"

namespace ladon::testing {

// A small DAG with every kind of junction, at odd sizes:
//   input [2, 9, 7]
//   conv 4 3x3 pad 1 (no bias) -> batch norm -> relu -> max pool 2          "pooled"  [4, 4, 3]
//   input -> conv 4 3x3 stride 2 -> tanh                           "side"    [4, 4, 3]
//   add(pooled, side)                                              "sum"     [4, 4, 3]
//   pooled -> conv 2 1x1                                           "narrow"  [2, 4, 3]
//   concat(sum, narrow) -> avg pool 2 stride 1 -> flatten -> dense 8 -> leaky relu
// heads: "cls" (softmax CE, label smoothing, dropout then dense 5) and "box"
// (smooth L1, dense 4) on the trunk's end; "tags" (BCE, dense 3) on "sum", so
// "sum" fans out to the trunk and a head.
inline ModelSpec dag_model(std::vector<float> head_weights = {1.0f, 0.5f, 2.0f}, float dropout = 0.25f) {
    ModelBuilder builder(2, 9, 7);
    builder.trunk()
        .conv2d(4, 3, 1, 1, false)  // batch norm follows: a bias would get no gradient
        .batch_norm()
        .relu()
        .max_pool2d(2)
        .named("pooled")
        .from({"input"})
        .conv2d(4, 3, 2, 0)
        .tanh()
        .named("side")
        .add({"pooled", "side"})
        .named("sum")
        .from({"pooled"})
        .conv2d(2, 1)
        .named("narrow")
        .concat({"sum", "narrow"})
        .avg_pool2d(2, 1)
        .flatten()
        .dense(8)
        .leaky_relu(0.1f);
    builder.head("cls", Loss::softmax_cross_entropy, head_weights[0]).dropout(dropout).dense(5);
    builder.last_head().label_smoothing = 0.1f;
    builder.head("box", Loss::smooth_l1, head_weights[1]).dense(4);
    builder.last_head().beta = 0.5f;
    builder.head("tags", Loss::sigmoid_binary_cross_entropy, head_weights[2], "sum").dense(3);
    return builder.build();
}

// The ops that gate one tensor by another: a squeeze-and-excitation block
// (global_avg_pool, dense, sigmoid, multiply by a [N, C] gate), a spatial
// softmax over channels multiplied into its input (equal shapes), and two
// heads mixing three shared experts through their own softmax gates (MMoE).
inline ModelSpec gated_model() {
    ModelBuilder builder(2, 9, 7);
    builder.trunk()
        .conv2d(4, 3, 1, 1)
        .tanh()
        .named("features")
        .global_avg_pool()
        .dense(4)
        .sigmoid()
        .named("excite")
        .multiply({"features", "excite"})
        .named("se")
        .softmax()
        .named("attention")
        .multiply({"attention", "se"})
        .max_pool2d(2)
        .flatten()
        .named("shared")
        .dense(6)
        .tanh()
        .named("expert0")
        .from({"shared"})
        .dense(6)
        .named("expert1")
        .from({"shared"})
        .dense(6)
        .sigmoid()
        .named("expert2");
    builder.head("cls", Loss::softmax_cross_entropy, 1.0f, "shared")
        .dense(3)
        .softmax()
        .named("cls_gate")
        .mixture({"cls_gate", "expert0", "expert1", "expert2"})
        .dense(5);
    builder.head("box", Loss::smooth_l1, 0.5f, "shared")
        .dense(3)
        .softmax()
        .named("box_gate")
        .mixture({"box_gate", "expert0", "expert1", "expert2"})
        .dense(4);
    return builder.build();
}

// Fills a batch's input, targets and masks reproducibly: class indices for
// CE heads, 0/1 for BCE heads, floats for regression heads. Row 1 of the last
// head is masked out.
inline void fill_batch(engine::Batch& batch, const engine::Graph& graph, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> value(-1.0f, 1.0f);
    const int64_t rows = batch.rows();
    for (float& x : batch.input()) x = value(rng);
    for (int h = 0; h < int(graph.heads.size()); ++h) {
        const engine::Head& head = graph.heads[h];
        const int64_t floats = batch.layout().heads[std::size_t(h)].target_floats;
        float* targets = batch.targets(h);
        for (int64_t row = 0; row < rows; ++row) {
            for (int64_t j = 0; j < floats; ++j) {
                float& t = targets[row * floats + j];
                switch (head.spec.loss) {
                    case Loss::softmax_cross_entropy:
                        t = float(rng() % uint32_t(head.width));
                        break;
                    case Loss::sigmoid_binary_cross_entropy:
                        t = float(rng() % 2u);
                        break;
                    default:
                        t = value(rng);
                        break;
                }
            }
            batch.mask(h)[row] = 1.0f;
        }
    }
    if (rows > 1) batch.mask(int(graph.heads.size()) - 1)[1] = 0.0f;
    batch.set_loaded_rows(rows);
}

// A batch for `executor`'s graph, filled as above.
inline engine::Batch make_batch(const engine::Executor& executor, uint32_t seed) {
    engine::Batch batch(executor.batch_layout());
    fill_batch(batch, executor.graph(), seed);
    return batch;
}

// One range the gradients-final hook reported during backward(), with the
// values the buffer held in it at that moment.
struct FinalGradientRange {
    int64_t begin = 0, end = 0;
    std::vector<float> values;
};

// Runs backward() with the gradients-final hook set, copying each reported
// range out of `gradients` (the flat gradient buffer the backward writes;
// on the emulated CUDA backend device memory is host memory, and a kernel
// has run when its launch returns, so the copy sees what the device would
// hold once the stream reached the hook's point).
inline std::vector<FinalGradientRange> backward_recording_final_ranges(engine::Executor& executor,
                                                                       const float* gradients) {
    std::vector<FinalGradientRange> ranges;
    executor.set_gradients_final_hook([&](int64_t begin, int64_t end) {
        ranges.push_back({begin, end, std::vector<float>(gradients + begin, gradients + end)});
    });
    executor.backward();
    executor.set_gradients_final_hook({});
    return ranges;
}

// The reported ranges are non-empty, arrive from the top of the buffer
// down, each ending where the one before began, so they cover [0, count)
// exactly once; and each held its final values (bit for bit) when it was
// reported: a range reported before one of its writers ran would still hold
// compute_loss()'s zeros there, or a part of the sum.
inline void expect_final_ranges_tile_the_buffer(const std::vector<FinalGradientRange>& ranges,
                                                std::span<const float> final_gradients) {
    const int64_t count = int64_t(final_gradients.size());
    ASSERT_FALSE(ranges.empty());
    int64_t expected_end = count;
    for (const FinalGradientRange& range : ranges) {
        EXPECT_LT(range.begin, range.end);
        EXPECT_EQ(range.end, expected_end) << "range [" << range.begin << ", " << range.end << ")";
        EXPECT_EQ(
            std::memcmp(range.values.data(), final_gradients.data() + range.begin, range.values.size() * sizeof(float)),
            0)
            << "range [" << range.begin << ", " << range.end << ") changed after it was reported final";
        expected_end = range.begin;
    }
    EXPECT_EQ(expected_end, 0);
}

}  // namespace ladon::testing
