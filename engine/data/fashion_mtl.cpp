// Fashion-MNIST multi-task: two items on a 40x40 canvas.
//
// Sample i draws (from seed and i alone) a left item A and a different right
// item B among the source images, A's top-left corner at (dy, dx) and B's at
// (8 + dy', 8 + dx'), every offset uniform in 0..4; the canvas is the
// pixelwise maximum of the two, pixels / 255. Targets: A's class, B's class,
// A's tight box (its own pixels above 0.1, canvas coordinates, x1/y1 one past
// the last pixel, divided by 40) and whether either item is footwear.
#include "engine/data/fashion_mtl.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "engine/data/counter_random.hpp"
#include "engine/data/tight_box.hpp"
#include "ladon/dataset.hpp"
#include "ladon/error.hpp"

namespace ladon {
namespace {

constexpr int64_t kClassCount = 10;
// Sandal, sneaker, ankle boot.
constexpr std::array<uint8_t, 3> kFootwearClasses = {5, 7, 9};
// An item's box covers its pixels brighter than this (pixel / 255), so that
// faint near-black values do not stretch the box.
constexpr float kBoxThreshold = 0.1f;

enum Draw : uint64_t { kLeftImageDraw, kRightImageDraw, kLeftRowDraw, kLeftColDraw, kRightRowDraw, kRightColDraw };

bool is_footwear(uint8_t label) {
    return std::find(kFootwearClasses.begin(), kFootwearClasses.end(), label) != kFootwearClasses.end();
}

std::string dims_text(const std::vector<int64_t>& dims) {
    std::string text = "[";
    for (size_t d = 0; d < dims.size(); ++d) text += (d == 0 ? "" : ", ") + std::to_string(dims[d]);
    return text + "]";
}

class FashionMtlDataset final : public Dataset {
public:
    FashionMtlDataset(const FashionMtlOptions& options, IdxArray images, IdxArray labels)
        : seed_(options.seed),
          train_(options.train),
          images_(std::move(images.data)),
          labels_(std::move(labels.data)),
          size_(options.limit > 0 ? std::min<int64_t>(options.limit, static_cast<int64_t>(labels_.size()))
                                  : static_cast<int64_t>(labels_.size())),
          tasks_{{"left", TaskKind::classes, kClassCount},
                 {"right", TaskKind::classes, kClassCount},
                 {"left_box", TaskKind::regression, 4},
                 {"footwear", TaskKind::binary, 1}} {}

    std::string name() const override { return train_ ? "fashion-mtl (train)" : "fashion-mtl (test)"; }
    int64_t size() const override { return size_; }
    SampleShape sample_shape() const override { return {1, data::kFashionMtlCanvas, data::kFashionMtlCanvas}; }
    const std::vector<TaskInfo>& tasks() const override { return tasks_; }

    void load(int64_t index, float* image, std::span<float* const> targets, float* present) const override {
        if (index < 0 || index >= size_) {
            throw Error(name() + ": sample index " + std::to_string(index) + " out of range; expected 0 <= index < " +
                        std::to_string(size_));
        }
        const data::FashionMtlPlacement placement =
            data::fashion_mtl_placement(seed_, index, static_cast<int64_t>(labels_.size()));

        constexpr int64_t canvas = data::kFashionMtlCanvas;
        std::fill(image, image + canvas * canvas, 0.0f);
        paste_max(placement.left_image, placement.left_row, placement.left_col, image);
        paste_max(placement.right_image, placement.right_row, placement.right_col, image);

        const uint8_t left_label = labels_[static_cast<size_t>(placement.left_image)];
        const uint8_t right_label = labels_[static_cast<size_t>(placement.right_image)];
        targets[0][0] = static_cast<float>(left_label);
        targets[1][0] = static_cast<float>(right_label);
        present[0] = 1.0f;
        present[1] = 1.0f;
        // A blank item has no box; real Fashion-MNIST images are never blank.
        present[2] = write_box(placement, targets[2]) ? 1.0f : 0.0f;
        targets[3][0] = is_footwear(left_label) || is_footwear(right_label) ? 1.0f : 0.0f;
        present[3] = 1.0f;
    }

private:
    const uint8_t* source_pixels(int64_t source) const {
        return images_.data() + source * data::kFashionImageSide * data::kFashionImageSide;
    }

    static float intensity(uint8_t pixel) { return static_cast<float>(pixel) / 255.0f; }

    void paste_max(int64_t source, int64_t top, int64_t left, float* image) const {
        const uint8_t* pixels = source_pixels(source);
        for (int64_t row = 0; row < data::kFashionImageSide; ++row) {
            float* canvas_row = image + (top + row) * data::kFashionMtlCanvas + left;
            for (int64_t col = 0; col < data::kFashionImageSide; ++col) {
                canvas_row[col] = std::max(canvas_row[col], intensity(pixels[row * data::kFashionImageSide + col]));
            }
        }
    }

    // Writes the left item's box (x0, y0, x1, y1) / canvas; false if the item
    // has no pixel above the threshold (the box is then all zeros).
    bool write_box(const data::FashionMtlPlacement& placement, float* box) const {
        const uint8_t* pixels = source_pixels(placement.left_image);
        data::TightBox item_box;
        for (int64_t row = 0; row < data::kFashionImageSide; ++row) {
            for (int64_t col = 0; col < data::kFashionImageSide; ++col) {
                if (intensity(pixels[row * data::kFashionImageSide + col]) > kBoxThreshold) item_box.add(row, col);
            }
        }
        if (item_box.empty()) {
            std::fill(box, box + 4, 0.0f);
            return false;
        }
        item_box.write(box, placement.left_col, placement.left_row, data::kFashionMtlCanvas);
        return true;
    }

    uint64_t seed_;
    bool train_;
    std::vector<uint8_t> images_;  // N x 28 x 28
    std::vector<uint8_t> labels_;  // N, each < 10
    int64_t size_;
    std::vector<TaskInfo> tasks_;
};

}  // namespace

namespace data {

FashionMtlPlacement fashion_mtl_placement(uint64_t seed, int64_t index, int64_t num_images) {
    const CounterRandom random(seed, static_cast<uint64_t>(index));
    FashionMtlPlacement placement;
    placement.left_image = random.uniform_int(kLeftImageDraw, 0, num_images - 1);
    // Any image but the left one, uniformly.
    placement.right_image =
        (placement.left_image + random.uniform_int(kRightImageDraw, 1, num_images - 1)) % num_images;
    placement.left_row = random.uniform_int(kLeftRowDraw, 0, kFashionMtlMaxJitter);
    placement.left_col = random.uniform_int(kLeftColDraw, 0, kFashionMtlMaxJitter);
    placement.right_row = kFashionMtlRightOrigin + random.uniform_int(kRightRowDraw, 0, kFashionMtlMaxJitter);
    placement.right_col = kFashionMtlRightOrigin + random.uniform_int(kRightColDraw, 0, kFashionMtlMaxJitter);
    return placement;
}

}  // namespace data

std::unique_ptr<Dataset> make_fashion_mtl_dataset(const FashionMtlOptions& options) {
    if (options.limit < 0) {
        throw Error("fashion-mtl dataset: limit " + std::to_string(options.limit) +
                    "; expected 0 (all samples) or a positive count");
    }
    const std::string prefix = options.directory + "/" + (options.train ? "train" : "t10k");
    const std::string images_path = prefix + "-images-idx3-ubyte.gz";
    const std::string labels_path = prefix + "-labels-idx1-ubyte.gz";
    IdxArray images = read_idx(images_path);
    IdxArray labels = read_idx(labels_path);

    const auto side = data::kFashionImageSide;
    if (images.dims.size() != 3 || images.dims[1] != side || images.dims[2] != side) {
        throw Error("fashion-mtl dataset: " + images_path + " has dimensions " + dims_text(images.dims) +
                    "; expected [N, 28, 28]");
    }
    if (labels.dims.size() != 1) {
        throw Error("fashion-mtl dataset: " + labels_path + " has dimensions " + dims_text(labels.dims) +
                    "; expected [N]");
    }
    if (labels.dims[0] != images.dims[0]) {
        throw Error("fashion-mtl dataset: " + labels_path + " has " + std::to_string(labels.dims[0]) +
                    " labels; expected one per image of " + images_path + " (" + std::to_string(images.dims[0]) + ")");
    }
    if (images.dims[0] < 2) {
        throw Error("fashion-mtl dataset: " + images_path + " has " + std::to_string(images.dims[0]) +
                    " images; expected at least 2 (each sample combines two different items)");
    }
    const auto bad_label =
        std::find_if(labels.data.begin(), labels.data.end(), [](uint8_t label) { return label >= kClassCount; });
    if (bad_label != labels.data.end()) {
        throw Error("fashion-mtl dataset: " + labels_path + " label " + std::to_string(*bad_label) + " at index " +
                    std::to_string(bad_label - labels.data.begin()) + "; expected a class in 0..9");
    }
    return std::make_unique<FashionMtlDataset>(options, std::move(images), std::move(labels));
}

}  // namespace ladon
