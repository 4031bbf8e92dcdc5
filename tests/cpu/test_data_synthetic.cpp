// The synthetic shapes dataset: a pure function of (seed, index), with labels
// that agree with the pixels drawn.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "ladon/dataset.hpp"
#include "ladon/error.hpp"

namespace ladon {
namespace {

// One loaded sample with its buffers laid out as the Dataset API asks.
struct Sample {
    std::vector<float> image;
    float shape = -1;
    float filled = -1;
    std::array<float, 4> box{};  // x0, y0, x1, y1 as fractions of the canvas
    std::array<float, 3> present{};

    bool operator==(const Sample&) const = default;
};

Sample load(const Dataset& dataset, int64_t index) {
    Sample sample;
    sample.image.resize(static_cast<size_t>(dataset.sample_shape().elements()));
    const std::array<float*, 3> targets = {&sample.shape, &sample.filled, sample.box.data()};
    dataset.load(index, sample.image.data(), targets, sample.present.data());
    return sample;
}

struct PixelBox {
    int64_t x0, y0, x1, y1;  // x1, y1 one past the last pixel
};

// The tight box of the pixels above 0.5: the shape's, since the background
// stays within the ±0.1 noise and shape pixels above 0.7.
PixelBox bright_box(const Sample& sample, int64_t canvas) {
    PixelBox box{canvas, canvas, 0, 0};
    for (int64_t row = 0; row < canvas; ++row) {
        for (int64_t col = 0; col < canvas; ++col) {
            if (sample.image[static_cast<size_t>(row * canvas + col)] > 0.5f) {
                box = {std::min(box.x0, col), std::min(box.y0, row), std::max(box.x1, col + 1),
                       std::max(box.y1, row + 1)};
            }
        }
    }
    return box;
}

TEST(SyntheticDataset, DescribesItsTasksAndShape) {
    const auto dataset = make_synthetic_dataset({.seed = 3, .size = 100, .canvas = 24});
    EXPECT_EQ(dataset->size(), 100);
    const SampleShape shape = dataset->sample_shape();
    EXPECT_EQ(shape.channels, 1);
    EXPECT_EQ(shape.height, 24);
    EXPECT_EQ(shape.width, 24);

    const auto& tasks = dataset->tasks();
    ASSERT_EQ(tasks.size(), 3u);
    EXPECT_EQ(tasks[0].name, "shape");
    EXPECT_EQ(tasks[0].kind, TaskKind::classes);
    EXPECT_EQ(tasks[0].width, 4);
    EXPECT_EQ(tasks[1].name, "filled");
    EXPECT_EQ(tasks[1].kind, TaskKind::binary);
    EXPECT_EQ(tasks[1].width, 1);
    EXPECT_EQ(tasks[2].name, "box");
    EXPECT_EQ(tasks[2].kind, TaskKind::regression);
    EXPECT_EQ(tasks[2].width, 4);
}

TEST(SyntheticDataset, SameSeedAndIndexGiveIdenticalSamples) {
    const auto first = make_synthetic_dataset({.seed = 7, .size = 1000});
    const auto second = make_synthetic_dataset({.seed = 7, .size = 1000});
    // Load order must not matter: there is no generator state.
    const Sample later = load(*first, 999);
    for (int64_t index : {0, 1, 500, 999}) {
        EXPECT_EQ(load(*first, index), load(*second, index)) << "index " << index;
    }
    EXPECT_EQ(later, load(*second, 999));
}

TEST(SyntheticDataset, DifferentSeedsOrIndicesGiveDifferentImages) {
    const auto seven = make_synthetic_dataset({.seed = 7});
    const auto eight = make_synthetic_dataset({.seed = 8});
    EXPECT_NE(load(*seven, 0).image, load(*eight, 0).image);
    EXPECT_NE(load(*seven, 0).image, load(*seven, 1).image);
}

TEST(SyntheticDataset, LabelsAreInRangeAndAllPresent) {
    const auto dataset = make_synthetic_dataset({.seed = 11, .size = 500});
    for (int64_t index = 0; index < dataset->size(); ++index) {
        const Sample sample = load(*dataset, index);
        EXPECT_TRUE(sample.shape == 0 || sample.shape == 1 || sample.shape == 2 || sample.shape == 3) << sample.shape;
        EXPECT_TRUE(sample.filled == 0 || sample.filled == 1) << sample.filled;
        EXPECT_GE(sample.box[0], 0.0f);
        EXPECT_GE(sample.box[1], 0.0f);
        EXPECT_LT(sample.box[0], sample.box[2]);
        EXPECT_LT(sample.box[1], sample.box[3]);
        EXPECT_LE(sample.box[2], 1.0f);
        EXPECT_LE(sample.box[3], 1.0f);
        EXPECT_EQ(sample.present, (std::array<float, 3>{1, 1, 1}));
        for (const float pixel : sample.image) {
            ASSERT_GE(pixel, -0.1f) << "index " << index;
            ASSERT_LE(pixel, 1.1f) << "index " << index;
        }
    }
}

TEST(SyntheticDataset, BoxIsTheTightBoxOfTheBrightPixels) {
    for (const int64_t canvas : {24, 32}) {
        const auto dataset = make_synthetic_dataset({.seed = 5, .size = 300, .canvas = canvas});
        const auto scale = static_cast<float>(canvas);
        for (int64_t index = 0; index < dataset->size(); ++index) {
            const Sample sample = load(*dataset, index);
            const PixelBox box = bright_box(sample, canvas);
            EXPECT_EQ(sample.box[0] * scale, static_cast<float>(box.x0)) << "canvas " << canvas << " index " << index;
            EXPECT_EQ(sample.box[1] * scale, static_cast<float>(box.y0)) << "canvas " << canvas << " index " << index;
            EXPECT_EQ(sample.box[2] * scale, static_cast<float>(box.x1)) << "canvas " << canvas << " index " << index;
            EXPECT_EQ(sample.box[3] * scale, static_cast<float>(box.y1)) << "canvas " << canvas << " index " << index;
        }
    }
}

TEST(SyntheticDataset, ShapesAreSquareInExtentAndSevenToFourteenPixelsOnTheDefaultCanvas) {
    const auto dataset = make_synthetic_dataset({.seed = 2, .size = 400});
    std::array<int, 15> sides_seen{};
    for (int64_t index = 0; index < dataset->size(); ++index) {
        const PixelBox box = bright_box(load(*dataset, index), 24);
        const int64_t side = box.x1 - box.x0;
        EXPECT_EQ(box.y1 - box.y0, side) << "index " << index;
        ASSERT_GE(side, 7) << "index " << index;
        ASSERT_LE(side, 14) << "index " << index;
        ++sides_seen[static_cast<size_t>(side)];
    }
    for (int side = 7; side <= 14; ++side) EXPECT_GT(sides_seen[static_cast<size_t>(side)], 0) << "side " << side;
}

TEST(SyntheticDataset, CentreOfTheBoxIsBrightExactlyWhenTheShapeIsFilled) {
    const auto dataset = make_synthetic_dataset({.seed = 9, .size = 400});
    for (int64_t index = 0; index < dataset->size(); ++index) {
        const Sample sample = load(*dataset, index);
        const PixelBox box = bright_box(sample, 24);
        const int64_t row = box.y0 + (box.y1 - box.y0 - 1) / 2;
        const int64_t col = box.x0 + (box.x1 - box.x0 - 1) / 2;
        const bool bright = sample.image[static_cast<size_t>(row * 24 + col)] > 0.5f;
        EXPECT_EQ(bright, sample.filled == 1.0f) << "index " << index << ", shape " << sample.shape;
    }
}

TEST(SyntheticDataset, ClassesAndFillAreRoughlyBalanced) {
    const auto dataset = make_synthetic_dataset({.seed = 1, .size = 2000});
    std::array<int, 4> per_shape{};
    int filled = 0;
    for (int64_t index = 0; index < dataset->size(); ++index) {
        const Sample sample = load(*dataset, index);
        ++per_shape[static_cast<size_t>(sample.shape)];
        filled += sample.filled == 1.0f ? 1 : 0;
    }
    // 500 expected per shape, standard deviation about 19.
    for (size_t shape = 0; shape < per_shape.size(); ++shape) {
        EXPECT_GT(per_shape[shape], 420) << "shape " << shape;
        EXPECT_LT(per_shape[shape], 580) << "shape " << shape;
    }
    EXPECT_GT(filled, 900);
    EXPECT_LT(filled, 1100);
}

TEST(SyntheticDataset, ConcurrentLoadsMatchSerialLoads) {
    const auto dataset = make_synthetic_dataset({.seed = 4, .size = 256});
    std::vector<Sample> serial;
    for (int64_t index = 0; index < dataset->size(); ++index) serial.push_back(load(*dataset, index));

    constexpr int kThreads = 4;
    std::vector<std::vector<Sample>> parallel(kThreads);
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int thread = 0; thread < kThreads; ++thread) {
        threads.emplace_back([&, thread] {
            for (int64_t index = thread; index < dataset->size(); index += kThreads) {
                parallel[static_cast<size_t>(thread)].push_back(load(*dataset, index));
            }
        });
    }
    for (auto& thread : threads) thread.join();
    for (int64_t index = 0; index < dataset->size(); ++index) {
        const Sample& sample = parallel[static_cast<size_t>(index % kThreads)][static_cast<size_t>(index / kThreads)];
        EXPECT_EQ(sample, serial[static_cast<size_t>(index)]) << "index " << index;
    }
}

TEST(SyntheticDataset, RejectsBadOptionsAndIndices) {
    EXPECT_THROW(make_synthetic_dataset({.canvas = 4}), Error);
    EXPECT_THROW(make_synthetic_dataset({.size = 0}), Error);
    const auto dataset = make_synthetic_dataset({.size = 10});
    EXPECT_THROW(load(*dataset, 10), Error);
    EXPECT_THROW(load(*dataset, -1), Error);
    try {
        make_synthetic_dataset({.canvas = 4});
    } catch (const Error& error) {
        EXPECT_NE(std::string(error.what()).find("expected 8 <= canvas <= 4096"), std::string::npos) << error.what();
    }
}

}  // namespace
}  // namespace ladon
