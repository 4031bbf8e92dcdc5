// The fashion-mtl dataset: two Fashion-MNIST items on a 40x40 canvas. Small
// fake IDX files check the recipe exactly; the real files (installed by the
// dataset-fashion-mnist package) check sizes and labels when present.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/data/fashion_mtl.hpp"
#include "ladon/dataset.hpp"
#include "ladon/error.hpp"
#include "test_data_files.hpp"

namespace ladon {
namespace {

constexpr int64_t kSide = data::kFashionImageSide;
constexpr int64_t kCanvas = data::kFashionMtlCanvas;
const std::string kRealDirectory = "/usr/share/datasets/fashion-mnist";

struct Sample {
    std::vector<float> image = std::vector<float>(kCanvas * kCanvas);
    float left = -1;
    float right = -1;
    std::array<float, 4> left_box{};
    float footwear = -1;
    std::array<float, 4> present{};

    bool operator==(const Sample&) const = default;
};

Sample load(const Dataset& dataset, int64_t index) {
    Sample sample;
    const std::array<float*, 4> targets = {&sample.left, &sample.right, sample.left_box.data(), &sample.footwear};
    dataset.load(index, sample.image.data(), targets, sample.present.data());
    return sample;
}

bool is_footwear(float label) { return label == 5 || label == 7 || label == 9; }

// Writes {directory}/{prefix}-images-idx3-ubyte.gz and -labels-idx1-ubyte.gz.
void write_fashion_files(const std::string& directory, const std::string& prefix,
                         const std::vector<std::vector<uint8_t>>& images, const std::vector<uint8_t>& labels) {
    std::vector<uint8_t> pixels;
    for (const auto& image : images) pixels.insert(pixels.end(), image.begin(), image.end());
    const auto count = static_cast<uint32_t>(images.size());
    test::write_gzip(directory + "/" + prefix + "-images-idx3-ubyte.gz", test::idx_bytes({count, 28, 28}, pixels));
    test::write_gzip(directory + "/" + prefix + "-labels-idx1-ubyte.gz",
                     test::idx_bytes({static_cast<uint32_t>(labels.size())}, labels));
}

// The canvas the recipe describes, built from the source images and a
// placement: zeros, then the pixelwise maximum of both pasted items / 255.
std::vector<float> expected_canvas(const IdxArray& images, const data::FashionMtlPlacement& placement) {
    std::vector<float> canvas(kCanvas * kCanvas, 0.0f);
    const auto paste = [&](int64_t source, int64_t top, int64_t left) {
        for (int64_t row = 0; row < kSide; ++row) {
            for (int64_t col = 0; col < kSide; ++col) {
                const float value = images.data[static_cast<size_t>((source * kSide + row) * kSide + col)] / 255.0f;
                float& pixel = canvas[static_cast<size_t>((top + row) * kCanvas + left + col)];
                pixel = std::max(pixel, value);
            }
        }
    };
    paste(placement.left_image, placement.left_row, placement.left_col);
    paste(placement.right_image, placement.right_row, placement.right_col);
    return canvas;
}

void expect_error_naming(const std::function<void()>& action, const std::string& file, const std::string& phrase) {
    try {
        action();
        ADD_FAILURE() << "no error; expected one naming " << file;
    } catch (const Error& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find(file), std::string::npos) << "message does not name " << file << ": " << message;
        EXPECT_NE(message.find(phrase), std::string::npos) << "message lacks \"" << phrase << "\": " << message;
    }
}

// ---------------------------------------------------------------- fake files

// Five images, each black but for one pixel at (10, 10) whose value names the
// image: wherever a sample puts its items, each lands as one distinct pixel.
class FashionMtlFakeFiles : public ::testing::Test {
protected:
    static constexpr int64_t kImages = 5;
    static constexpr int64_t kMarkedPixel = 10;
    static constexpr std::array<uint8_t, kImages> kLabels = {9, 0, 5, 3, 7};

    static uint8_t marker(int64_t image) { return static_cast<uint8_t>(100 + 30 * image); }
    // The image whose marker shows as `value` on the canvas, or -1.
    static int64_t image_with_marker(float value) {
        for (int64_t image = 0; image < kImages; ++image) {
            if (marker(image) / 255.0f == value) return image;
        }
        return -1;
    }

    void SetUp() override {
        std::vector<std::vector<uint8_t>> images;
        for (int64_t image = 0; image < kImages; ++image) {
            std::vector<uint8_t> pixels(kSide * kSide, 0);
            pixels[kMarkedPixel * kSide + kMarkedPixel] = marker(image);
            images.push_back(pixels);
        }
        write_fashion_files(dir_.path(), "train", images, {kLabels.begin(), kLabels.end()});
    }

    test::TempDir dir_;
};

TEST_F(FashionMtlFakeFiles, DescribesItsTasksAndShape) {
    const auto dataset = make_fashion_mtl_dataset({.directory = dir_.path()});
    EXPECT_EQ(dataset->size(), kImages);
    const SampleShape shape = dataset->sample_shape();
    EXPECT_EQ(shape.channels, 1);
    EXPECT_EQ(shape.height, 40);
    EXPECT_EQ(shape.width, 40);

    const auto& tasks = dataset->tasks();
    ASSERT_EQ(tasks.size(), 4u);
    EXPECT_EQ(tasks[0].name, "left");
    EXPECT_EQ(tasks[0].kind, TaskKind::classes);
    EXPECT_EQ(tasks[0].width, 10);
    EXPECT_EQ(tasks[1].name, "right");
    EXPECT_EQ(tasks[1].kind, TaskKind::classes);
    EXPECT_EQ(tasks[1].width, 10);
    EXPECT_EQ(tasks[2].name, "left_box");
    EXPECT_EQ(tasks[2].kind, TaskKind::regression);
    EXPECT_EQ(tasks[2].width, 4);
    EXPECT_EQ(tasks[3].name, "footwear");
    EXPECT_EQ(tasks[3].kind, TaskKind::binary);
    EXPECT_EQ(tasks[3].width, 1);
}

TEST_F(FashionMtlFakeFiles, LimitCapsTheSizeAndKeepsTheSamples) {
    const auto all = make_fashion_mtl_dataset({.directory = dir_.path(), .seed = 3});
    const auto three = make_fashion_mtl_dataset({.directory = dir_.path(), .seed = 3, .limit = 3});
    const auto more = make_fashion_mtl_dataset({.directory = dir_.path(), .seed = 3, .limit = 100});
    EXPECT_EQ(three->size(), 3);
    EXPECT_EQ(more->size(), kImages);
    for (int64_t index = 0; index < 3; ++index) EXPECT_EQ(load(*three, index), load(*all, index));
    EXPECT_THROW(load(*three, 3), Error);
    EXPECT_THROW(make_fashion_mtl_dataset({.directory = dir_.path(), .limit = -1}), Error);
}

TEST_F(FashionMtlFakeFiles, ItemsLandAtTheirOffsetRangesWithTheirLabelsBoxAndFootwear) {
    // The dataset has 5 samples; other seeds give other draws of the recipe.
    std::set<int64_t> left_rows, left_cols, right_rows, right_cols, left_images;
    for (uint64_t seed = 1; seed <= 60; ++seed) {
        const auto dataset = make_fashion_mtl_dataset({.directory = dir_.path(), .seed = seed});
        for (int64_t index = 0; index < dataset->size(); ++index) {
            const Sample sample = load(*dataset, index);
            struct Marked {
                int64_t row, col, image;
            };
            std::vector<Marked> marked;
            for (int64_t pixel = 0; pixel < kCanvas * kCanvas; ++pixel) {
                const float value = sample.image[static_cast<size_t>(pixel)];
                if (value == 0.0f) continue;
                const int64_t image = image_with_marker(value);
                ASSERT_GE(image, 0) << "unexpected pixel value " << value;
                marked.push_back({pixel / kCanvas, pixel % kCanvas, image});
            }
            // The left item's marker lands in rows/cols 10..14, the right's in 18..22.
            ASSERT_EQ(marked.size(), 2u) << "seed " << seed << " index " << index;
            const Marked& left = marked[0];
            const Marked& right = marked[1];
            ASSERT_GE(left.row, 10);
            ASSERT_LE(left.row, 14);
            ASSERT_GE(left.col, 10);
            ASSERT_LE(left.col, 14);
            ASSERT_GE(right.row, 18);
            ASSERT_LE(right.row, 22);
            ASSERT_GE(right.col, 18);
            ASSERT_LE(right.col, 22);
            EXPECT_NE(left.image, right.image);

            EXPECT_EQ(sample.left, kLabels[static_cast<size_t>(left.image)]);
            EXPECT_EQ(sample.right, kLabels[static_cast<size_t>(right.image)]);
            // A one-pixel item's box is that pixel.
            EXPECT_EQ(sample.left_box, (std::array<float, 4>{left.col / 40.0f, left.row / 40.0f, (left.col + 1) / 40.0f,
                                                             (left.row + 1) / 40.0f}));
            EXPECT_EQ(sample.footwear, is_footwear(sample.left) || is_footwear(sample.right) ? 1.0f : 0.0f);
            EXPECT_EQ(sample.present, (std::array<float, 4>{1, 1, 1, 1}));

            left_rows.insert(left.row);
            left_cols.insert(left.col);
            right_rows.insert(right.row);
            right_cols.insert(right.col);
            left_images.insert(left.image);
        }
    }
    // Every offset 0..4 and every image occurs in 300 draws.
    EXPECT_EQ(left_rows.size(), 5u);
    EXPECT_EQ(left_cols.size(), 5u);
    EXPECT_EQ(right_rows.size(), 5u);
    EXPECT_EQ(right_cols.size(), 5u);
    EXPECT_EQ(left_images.size(), 5u);
}

TEST(FashionMtlDataset, CanvasIsThePixelwiseMaximumOfBothItemsAtTheirPlacement) {
    // Overlapping 28x28 items with varied pixels, some under the box threshold.
    test::TempDir dir;
    std::vector<std::vector<uint8_t>> images;
    for (int64_t image = 0; image < 4; ++image) {
        std::vector<uint8_t> pixels(kSide * kSide, 0);
        for (int64_t row = 3 + image; row < 20 + image; ++row) {
            for (int64_t col = 5; col < 25 - image; ++col) {
                pixels[static_cast<size_t>(row * kSide + col)] =
                    static_cast<uint8_t>((row * 37 + col * 11 + image * 53) % 256);
            }
        }
        images.push_back(pixels);
    }
    write_fashion_files(dir.path(), "t10k", images, {1, 5, 2, 8});
    const IdxArray idx_images = read_idx(dir.file("t10k-images-idx3-ubyte.gz"));

    for (uint64_t seed : {1, 2, 3}) {
        const auto dataset = make_fashion_mtl_dataset({.directory = dir.path(), .train = false, .seed = seed});
        for (int64_t index = 0; index < dataset->size(); ++index) {
            const auto placement = data::fashion_mtl_placement(seed, index, 4);
            EXPECT_EQ(load(*dataset, index).image, expected_canvas(idx_images, placement))
                << "seed " << seed << " index " << index;
        }
    }
}

TEST(FashionMtlDataset, MissingDirectoryIsAnErrorNamingTheFile) {
    test::TempDir dir;
    const std::string absent = dir.file("absent");
    expect_error_naming([&] { make_fashion_mtl_dataset({.directory = absent}); },
                        absent + "/train-images-idx3-ubyte.gz", "cannot open");
    expect_error_naming([&] { make_fashion_mtl_dataset({.directory = absent, .train = false}); },
                        absent + "/t10k-images-idx3-ubyte.gz", "cannot open");
}

TEST(FashionMtlDataset, InconsistentFilesAreErrorsNamingTheFile) {
    test::TempDir dir;
    const std::vector<uint8_t> blank(kSide * kSide, 0);
    const std::string images = dir.file("train-images-idx3-ubyte.gz");
    const std::string labels = dir.file("train-labels-idx1-ubyte.gz");
    const auto make = [&] { make_fashion_mtl_dataset({.directory = dir.path()}); };

    write_fashion_files(dir.path(), "train", {blank, blank, blank}, {1, 2});
    expect_error_naming(make, labels, "expected one per image");

    write_fashion_files(dir.path(), "train", {blank, blank}, {1, 10});
    expect_error_naming(make, labels, "label 10 at index 1; expected a class in 0..9");

    write_fashion_files(dir.path(), "train", {blank}, {1});
    expect_error_naming(make, images, "expected at least 2");

    test::write_gzip(images, test::idx_bytes({2, 28, 27}, std::vector<uint8_t>(size_t{2} * 28 * 27)));
    expect_error_naming(make, images, "has dimensions [2, 28, 27]; expected [N, 28, 28]");
}

// ---------------------------------------------------------------- real files

// Reads each real file at most once per process, and only for the tests that
// need it: the train set is 26 MB of gzip, and CTest runs every test in a
// process of its own.
class FashionMtlRealFiles : public ::testing::Test {
protected:
    void SetUp() override {
        if (!std::filesystem::exists(kRealDirectory)) {
            GTEST_SKIP() << kRealDirectory << " not installed (package dataset-fashion-mnist)";
        }
    }
    static void TearDownTestSuite() {
        train_set_.reset();
        test_set_.reset();
        test_images_.reset();
        test_labels_.reset();
    }

    static const Dataset& train_set() {
        if (!train_set_) train_set_ = make_fashion_mtl_dataset({.directory = kRealDirectory, .train = true, .seed = 1});
        return *train_set_;
    }
    static const Dataset& test_set() {
        if (!test_set_) test_set_ = make_fashion_mtl_dataset({.directory = kRealDirectory, .train = false, .seed = 1});
        return *test_set_;
    }
    static const IdxArray& test_images() {
        if (!test_images_)
            test_images_ = std::make_unique<IdxArray>(read_idx(kRealDirectory + "/t10k-images-idx3-ubyte.gz"));
        return *test_images_;
    }
    static const IdxArray& test_labels() {
        if (!test_labels_)
            test_labels_ = std::make_unique<IdxArray>(read_idx(kRealDirectory + "/t10k-labels-idx1-ubyte.gz"));
        return *test_labels_;
    }

private:
    static inline std::unique_ptr<Dataset> train_set_;
    static inline std::unique_ptr<Dataset> test_set_;
    static inline std::unique_ptr<IdxArray> test_images_;
    static inline std::unique_ptr<IdxArray> test_labels_;
};

TEST_F(FashionMtlRealFiles, FirstTrainingLabelIsAnAnkleBoot) {
    const IdxArray labels = read_idx(kRealDirectory + "/train-labels-idx1-ubyte.gz");
    ASSERT_EQ(labels.dims, (std::vector<int64_t>{60000}));
    EXPECT_EQ(labels.data[0], 9);
}

TEST_F(FashionMtlRealFiles, SamplesAreAFunctionOfSeedAndIndex) {
    const auto again = make_fashion_mtl_dataset({.directory = kRealDirectory, .train = false, .seed = 1});
    const auto other_seed = make_fashion_mtl_dataset({.directory = kRealDirectory, .train = false, .seed = 2});
    for (int64_t index : {0, 1, 9999}) {
        EXPECT_EQ(load(test_set(), index), load(*again, index)) << "index " << index;
        EXPECT_NE(load(test_set(), index).image, load(*other_seed, index).image) << "index " << index;
    }
}

TEST_F(FashionMtlRealFiles, TestSetHasOneSamplePerImage) { EXPECT_EQ(test_set().size(), 10000); }

TEST_F(FashionMtlRealFiles, TargetsAndCanvasFollowTheSourceImages) {
    const int64_t num_images = test_images().dims[0];
    for (int64_t index = 0; index < 2000; ++index) {
        const Sample sample = load(test_set(), index);
        const auto placement = data::fashion_mtl_placement(1, index, num_images);
        ASSERT_EQ(sample.image, expected_canvas(test_images(), placement)) << "index " << index;
        EXPECT_EQ(sample.left, test_labels().data[static_cast<size_t>(placement.left_image)]) << "index " << index;
        EXPECT_EQ(sample.right, test_labels().data[static_cast<size_t>(placement.right_image)]) << "index " << index;
        EXPECT_EQ(sample.footwear, is_footwear(sample.left) || is_footwear(sample.right) ? 1.0f : 0.0f);
        EXPECT_EQ(sample.present, (std::array<float, 4>{1, 1, 1, 1}));

        const auto& box = sample.left_box;
        EXPECT_GE(box[0], 0.0f);
        EXPECT_GE(box[1], 0.0f);
        EXPECT_LT(box[0], box[2]);
        EXPECT_LT(box[1], box[3]);
        EXPECT_LE(box[2], 1.0f);
        EXPECT_LE(box[3], 1.0f);
        // The box lies within the left item's 28x28 square on the canvas.
        EXPECT_GE(box[0] * 40, static_cast<float>(placement.left_col));
        EXPECT_LE(box[2] * 40, static_cast<float>(placement.left_col + kSide));
    }
}

TEST_F(FashionMtlRealFiles, TrainingSetHasOneSamplePerImageWithValidTargets) {
    ASSERT_EQ(train_set().size(), 60000);
    EXPECT_EQ(load(train_set(), 59999), load(train_set(), 59999));
    std::array<int, 10> left_counts{};
    for (int64_t index = 0; index < 60000; index += 30) {
        const Sample sample = load(train_set(), index);
        ASSERT_GE(sample.left, 0);
        ASSERT_LE(sample.left, 9);
        ASSERT_GE(sample.right, 0);
        ASSERT_LE(sample.right, 9);
        ++left_counts[static_cast<size_t>(sample.left)];
        ASSERT_EQ(sample.footwear, is_footwear(sample.left) || is_footwear(sample.right) ? 1.0f : 0.0f);
        ASSERT_LT(sample.left_box[0], sample.left_box[2]);
        ASSERT_LT(sample.left_box[1], sample.left_box[3]);
        for (const float pixel : sample.image) ASSERT_TRUE(pixel >= 0.0f && pixel <= 1.0f) << pixel;
    }
    // Fashion-MNIST is balanced: 200 of 2000 draws expected per class.
    for (const int count : left_counts) {
        EXPECT_GT(count, 140);
        EXPECT_LT(count, 260);
    }
}

}  // namespace
}  // namespace ladon
