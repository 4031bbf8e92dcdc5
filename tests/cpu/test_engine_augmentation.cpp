// Training-time augmentation keeps box labels on the pixels they describe.
// No executor: the loader fills a Batch of a layout.
#include <gtest/gtest.h>

#include <set>

#include "engine/batch_loader.hpp"
#include "engine/graph.hpp"
#include "ladon/error.hpp"
#include "ladon/model.hpp"

namespace {

// 1 x 9 x 11 images with one bright pixel; task `box` is that pixel's box
// (x0, y0, x1, y1) / size with exclusive x1, y1.
class OnePixel : public ladon::Dataset {
public:
    std::string name() const override { return "one-pixel"; }
    int64_t size() const override { return 8; }
    ladon::SampleShape sample_shape() const override { return {1, 9, 11}; }
    const std::vector<ladon::TaskInfo>& tasks() const override { return tasks_; }
    void load(int64_t index, float* image, std::span<float* const> targets, float* present) const override {
        std::fill(image, image + 99, 0.0f);
        const int64_t y = 2 + index % 5, x = 3 + index % 6;
        image[y * 11 + x] = 1.0f;
        float* box = targets[0];
        box[0] = float(x) / 11;
        box[1] = float(y) / 9;
        box[2] = float(x + 1) / 11;
        box[3] = float(y + 1) / 9;
        present[0] = 1.0f;
    }

private:
    std::vector<ladon::TaskInfo> tasks_{{"box", ladon::TaskKind::regression, 4}};
};

ladon::engine::BatchLayout test_layout() {
    ladon::ModelBuilder builder(1, 9, 11);
    builder.trunk().flatten();
    builder.head("box", ladon::Loss::smooth_l1).dense(4);
    return ladon::engine::BatchLayout::of(ladon::engine::build_graph(builder.build(), 8));
}

TEST(EngineAugmentation, ShiftedAndFlippedBoxesStillFrameTheirPixel) {
    OnePixel data;
    ladon::engine::BatchLoader loader(data, test_layout(), {2, true, {"box"}, 7});
    ladon::engine::Batch batch(test_layout());
    const std::vector<int64_t> indices{0, 1, 2, 3, 4, 5, 6, 7};
    std::set<std::pair<int, int>> moves;
    int flipped_or_moved = 0;
    for (int64_t step = 0; step < 40; ++step) {
        loader.load(indices, batch, step);
        for (int64_t row = 0; row < 8; ++row) {
            const float* image = batch.input().data() + row * 99;
            const float* box = batch.targets(0) + row * 4;
            int bright = -1;
            for (int i = 0; i < 99; ++i)
                if (image[i] == 1.0f) bright = i;
            // A shift of at most 2 keeps these pixels inside the image.
            ASSERT_GE(bright, 0) << "step " << step << " row " << row;
            const int y = bright / 11, x = bright % 11;
            EXPECT_NEAR(box[0] * 11, x, 1e-4);
            EXPECT_NEAR(box[2] * 11, x + 1, 1e-4);
            EXPECT_NEAR(box[1] * 9, y, 1e-4);
            EXPECT_NEAR(box[3] * 9, y + 1, 1e-4);
            const int64_t y0 = 2 + row % 5, x0 = 3 + row % 6;
            moves.insert({int(y - y0), int(x - x0)});
            flipped_or_moved += (y != y0 || x != x0);
        }
    }
    EXPECT_GT(moves.size(), 10u);  // shifts and flips vary
    EXPECT_GT(flipped_or_moved, 200);
}

TEST(EngineAugmentation, SameStepGivesTheSameBatch) {
    OnePixel data;
    ladon::engine::BatchLoader loader(data, test_layout(), {2, true, {"box"}, 7});
    ladon::engine::Batch batch(test_layout());
    const std::vector<int64_t> indices{0, 1, 2, 3, 4, 5, 6, 7};
    loader.load(indices, batch, 5);
    const std::vector<float> first(batch.input().begin(), batch.input().end());
    loader.load(indices, batch, 6);
    loader.load(indices, batch, 5);
    EXPECT_EQ(std::vector<float>(batch.input().begin(), batch.input().end()), first);
}

TEST(EngineAugmentation, BoxTaskMustBeAFourWideRegression) {
    OnePixel data;
    try {
        ladon::engine::BatchLoader loader(data, test_layout(), {1, false, {"shape"}, 1});
        FAIL() << "no error";
    } catch (const ladon::Error& e) {
        EXPECT_NE(std::string(e.what()).find("box task 'shape' must be a regression task of width 4"), std::string::npos)
            << e.what();
    }
}

}  // namespace
