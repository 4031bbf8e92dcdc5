// Synthetic shapes: one shape per image, drawn from (seed, index) alone.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/data/counter_random.hpp"
#include "engine/data/tight_box.hpp"
#include "ladon/dataset.hpp"
#include "ladon/error.hpp"

namespace ladon {
namespace {

enum class Shape { square, disc, triangle, plus };
constexpr int64_t kShapeCount = 4;

constexpr int64_t kMinCanvas = 8;
constexpr int64_t kMaxCanvas = 4096;
constexpr float kNoiseAmplitude = 0.1f;  // every pixel gets uniform noise in ±this
constexpr float kMinIntensity = 0.8f;    // shape pixels: intensity in [0.8, 1) plus noise

// Counters of the per-sample draws (see CounterRandom); pixel p's noise uses
// kNoiseDraw + p.
enum Draw : uint64_t { kShapeDraw, kFilledDraw, kSideDraw, kLeftDraw, kTopDraw, kIntensityDraw, kNoiseDraw = 16 };

// Whether the filled `shape`, drawn in a side x side frame, covers (row, col).
bool covers(Shape shape, int64_t side, int64_t row, int64_t col) {
    if (row < 0 || col < 0 || row >= side || col >= side) return false;
    const double center = (side - 1) / 2.0;
    const double dy = row - center;
    const double dx = col - center;
    switch (shape) {
        case Shape::square:
            return true;
        case Shape::disc: {
            const double radius = side / 2.0;
            return dx * dx + dy * dy <= radius * radius;
        }
        case Shape::triangle:
            // Apex at the top, base the full bottom row: half-width grows by
            // half a pixel per row.
            return std::abs(dx) <= (row + 1) / 2.0;
        case Shape::plus: {
            // Bars about a third of the side wide, with the parity of `side`
            // so they sit exactly on the centre.
            const int64_t bar = side - 2 * (side / 3);
            const double half_bar = (bar - 1) / 2.0;
            return std::abs(dy) <= half_bar || std::abs(dx) <= half_bar;
        }
    }
    return false;
}

// An outline keeps the covered pixels that touch (8-connected) an uncovered
// one or the frame's edge: a one-pixel rim with the same tight box as the
// filled shape.
bool covers_outline(Shape shape, int64_t side, int64_t row, int64_t col) {
    if (!covers(shape, side, row, col)) return false;
    for (int64_t dy = -1; dy <= 1; ++dy) {
        for (int64_t dx = -1; dx <= 1; ++dx) {
            if (!covers(shape, side, row + dy, col + dx)) return true;
        }
    }
    return false;
}

class SyntheticDataset final : public Dataset {
public:
    explicit SyntheticDataset(const SyntheticOptions& options)
        : options_(options),
          // Side range scales with the canvas: 7..14 pixels on the default 24.
          min_side_(std::max<int64_t>(4, options.canvas * 7 / 24)),
          max_side_(std::max(min_side_, options.canvas * 14 / 24)),
          tasks_{{"shape", TaskKind::classes, kShapeCount},
                 {"filled", TaskKind::binary, 1},
                 {"box", TaskKind::regression, 4}} {}

    std::string name() const override { return "synthetic"; }
    int64_t size() const override { return options_.size; }
    SampleShape sample_shape() const override { return {1, options_.canvas, options_.canvas}; }
    const std::vector<TaskInfo>& tasks() const override { return tasks_; }

    void load(int64_t index, float* image, std::span<float* const> targets, float* present) const override {
        if (index < 0 || index >= options_.size) {
            throw Error("synthetic dataset: sample index " + std::to_string(index) +
                        " out of range; expected 0 <= index < " + std::to_string(options_.size));
        }
        const data::CounterRandom random(options_.seed, static_cast<uint64_t>(index));
        const auto shape = static_cast<Shape>(random.uniform_int(kShapeDraw, 0, kShapeCount - 1));
        const bool filled = random.uniform_int(kFilledDraw, 0, 1) == 1;
        const int64_t side = random.uniform_int(kSideDraw, min_side_, max_side_);
        const int64_t left = random.uniform_int(kLeftDraw, 0, options_.canvas - side);
        const int64_t top = random.uniform_int(kTopDraw, 0, options_.canvas - side);
        const float intensity = kMinIntensity + (1.0f - kMinIntensity) * random.uniform_float(kIntensityDraw);

        const int64_t canvas = options_.canvas;
        data::TightBox box;
        for (int64_t row = 0; row < canvas; ++row) {
            for (int64_t col = 0; col < canvas; ++col) {
                const int64_t pixel = row * canvas + col;
                const float noise =
                    kNoiseAmplitude * (2.0f * random.uniform_float(kNoiseDraw + static_cast<uint64_t>(pixel)) - 1.0f);
                const bool on = filled ? covers(shape, side, row - top, col - left)
                                       : covers_outline(shape, side, row - top, col - left);
                image[pixel] = noise + (on ? intensity : 0.0f);
                if (on) box.add(row, col);
            }
        }

        targets[0][0] = static_cast<float>(shape);
        targets[1][0] = filled ? 1.0f : 0.0f;
        box.write(targets[2], 0, 0, canvas);  // never empty: every shape covers its centre
        std::fill(present, present + tasks_.size(), 1.0f);
    }

private:
    SyntheticOptions options_;
    int64_t min_side_;
    int64_t max_side_;
    std::vector<TaskInfo> tasks_;
};

}  // namespace

std::unique_ptr<Dataset> make_synthetic_dataset(const SyntheticOptions& options) {
    if (options.canvas < kMinCanvas || options.canvas > kMaxCanvas) {
        throw Error("synthetic dataset: canvas " + std::to_string(options.canvas) + " out of range; expected " +
                    std::to_string(kMinCanvas) + " <= canvas <= " + std::to_string(kMaxCanvas));
    }
    if (options.size <= 0) {
        throw Error("synthetic dataset: size " + std::to_string(options.size) + "; expected at least 1 sample");
    }
    return std::make_unique<SyntheticDataset>(options);
}

}  // namespace ladon
