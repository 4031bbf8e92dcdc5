// The background batch prefetcher gives exactly the batches the loader gives
// for the same steps, across epochs and with augmentation; a failure while
// loading reaches the caller at the step it belongs to. No executor is
// involved: batches are values of a layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/batch_loader.hpp"
#include "ladon/config.hpp"
#include "ladon/dataset.hpp"
#include "ladon/error.hpp"

namespace ladon::engine {
namespace {

constexpr uint64_t kSeed = 3;

BatchLayout layout_of(const RunConfig& config, int64_t batch) {
    return BatchLayout::of(build_graph(config.model, batch));
}

RunConfig small_config() {
    RunConfig config = default_run_config();
    config.data.train_size = 44;  // 5 steps of 8 an epoch, 4 samples left over
    return config;
}

// Everything a batch consists of.
std::vector<float> contents(const Batch& batch) {
    std::vector<float> all(batch.input().begin(), batch.input().end());
    all.insert(all.end(), batch.all_targets().begin(), batch.all_targets().end());
    all.insert(all.end(), batch.all_masks().begin(), batch.all_masks().end());
    all.push_back(float(batch.loaded_rows()));
    return all;
}

// Fails to read one sample, as a corrupt file would.
class OneBadSample final : public Dataset {
public:
    OneBadSample(std::unique_ptr<Dataset> inner, int64_t bad) : inner_(std::move(inner)), bad_(bad) {}
    std::string name() const override { return "one-bad"; }
    int64_t size() const override { return inner_->size(); }
    SampleShape sample_shape() const override { return inner_->sample_shape(); }
    const std::vector<TaskInfo>& tasks() const override { return inner_->tasks(); }
    void load(int64_t index, float* image, std::span<float* const> targets, float* present) const override {
        if (index == bad_) throw Error("one-bad: sample " + std::to_string(index) + " is corrupt");
        inner_->load(index, image, targets, present);
    }

private:
    std::unique_ptr<Dataset> inner_;
    int64_t bad_;
};

// Rank 1 of 2 (rows 4..7 of every global batch of 8), three epochs' worth of
// steps, a shift and a flip: each next() gives what BatchLoader::load gives
// for the same rows and step, bit for bit, for any depth, and the batch it
// gave stays as it was (no reload into it) until the next call.
TEST(EnginePrefetch, BatchesAreTheLoadersBitForBit) {
    const RunConfig config = small_config();
    auto data = make_train_dataset(config.data);
    const Augmentation augmentation{2, true, {"box"}, kSeed, 4};
    const StepOrder order{kSeed, data->size(), 8, 4, 4};
    ASSERT_EQ(order.steps_per_epoch(), 5);
    const BatchLayout layout = layout_of(config, 4);
    BatchLoader loader(*data, layout, augmentation);
    Batch reference(layout);
    for (int depth : {1, 2, 3}) {
        const int64_t first = 2, last = 14;  // from inside epoch 1 to inside epoch 3
        BatchPrefetcher prefetcher(*data, layout, plain_host_memory(), order, augmentation, first, last, depth);
        std::vector<int64_t> permutation;
        for (int64_t step = first; step < last; ++step) {
            const Batch& batch = prefetcher.next(step);
            EXPECT_EQ(batch.loaded_rows(), 4);
            const std::vector<float> given = contents(batch);
            shuffled_indices(kSeed, step / 5 + 1, permutation, data->size());
            loader.load(std::span<const int64_t>(permutation.data() + (step % 5) * 8 + 4, 4), reference, step);
            ASSERT_EQ(contents(reference), given) << "depth " << depth << ", step " << step;
            ASSERT_EQ(contents(batch), given) << "depth " << depth << ", step " << step << ": reloaded while lent";
        }
    }
}

// Augmentation needs no executor either: a flip mirrors the image and the box.
TEST(EnginePrefetch, TheLoaderNeedsNoExecutor) {
    const RunConfig config = small_config();
    auto data = make_train_dataset(config.data);
    const BatchLayout layout = layout_of(config, 2);
    Batch plain(layout), augmented(layout);
    const std::vector<int64_t> rows = {0, 1};
    BatchLoader(*data, layout).load(rows, plain);
    BatchLoader(*data, layout, Augmentation{0, true, {"box"}, kSeed, 0}).load(rows, augmented, 0);
    EXPECT_EQ(plain.loaded_rows(), 2);
    EXPECT_NE(contents(plain), contents(augmented));
    EXPECT_THROW(BatchLoader(*data, layout).load(rows, *std::make_unique<Batch>(layout_of(config, 3))), Error);
}

// peek() gives the next step's batch once it is loaded, the very one next()
// then returns, and never waits; it has nothing for a step other than the next.
TEST(EnginePrefetch, PeekShowsTheNextBatchOnceLoadedAndNextReturnsIt) {
    const RunConfig config = small_config();
    auto data = make_train_dataset(config.data);
    const BatchLayout layout = layout_of(config, 8);
    BatchPrefetcher prefetcher(*data, layout, plain_host_memory(), {kSeed, data->size(), 8, 0, 8}, {}, 0, 4, 2);
    EXPECT_EQ(prefetcher.peek(1), nullptr);  // not the next step
    const Batch* seen = nullptr;
    for (int64_t step = 0; step < 4; ++step) {
        const Batch& batch = prefetcher.next(step);
        if (seen != nullptr) {
            EXPECT_EQ(seen, &batch) << "step " << step;
        }
        seen = nullptr;
        for (int tries = 0; tries < 2000 && seen == nullptr && step + 1 < 4; ++tries) {
            seen = prefetcher.peek(step + 1);
            if (seen == nullptr) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        if (step + 1 < 4) {
            EXPECT_NE(seen, nullptr) << "step " << step + 1 << " never loaded";
        }
        EXPECT_EQ(prefetcher.peek(step + 2), nullptr);
    }
    EXPECT_EQ(prefetcher.peek(4), nullptr);  // past the end
}

TEST(EnginePrefetch, StepsOutOfOrderOrPastTheEndAreErrors) {
    const RunConfig config = small_config();
    auto data = make_train_dataset(config.data);
    const BatchLayout layout = layout_of(config, 8);
    BatchPrefetcher prefetcher(*data, layout, plain_host_memory(), {kSeed, data->size(), 8, 0, 8}, {}, 0, 2);
    try {
        prefetcher.next(1);
        FAIL() << "step 1 before step 0";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("asked for step 1, but the next prefetched step is 0"), std::string::npos)
            << e.what();
    }
    EXPECT_EQ(prefetcher.next(0).loaded_rows(), 8);
    EXPECT_EQ(prefetcher.next(1).loaded_rows(), 8);
    EXPECT_THROW(prefetcher.next(2), Error);
    EXPECT_THROW(BatchPrefetcher(*data, layout, plain_host_memory(), {kSeed, data->size(), 8, 0, 8}, {}, 0, 2, 0),
                 Error);
    EXPECT_THROW(BatchPrefetcher(*data, layout, plain_host_memory(), {kSeed, data->size(), 8, 4, 8}, {}, 0, 2), Error);
}

// The steps before the one holding the corrupt sample come through; that
// step throws the dataset's message, whichever depth loaded it ahead.
TEST(EnginePrefetch, ACorruptSampleFailsItsOwnStepWithTheDatasetsMessage) {
    const RunConfig config = small_config();
    std::vector<int64_t> permutation;
    shuffled_indices(kSeed, 1, permutation, config.data.train_size);
    const int64_t bad_step = 3;
    OneBadSample data(make_train_dataset(config.data), permutation[bad_step * 8 + 5]);
    for (int depth : {1, 2, 4}) {
        BatchPrefetcher prefetcher(data, layout_of(config, 8), plain_host_memory(), {kSeed, data.size(), 8, 0, 8}, {},
                                   0, 5, depth);
        for (int64_t step = 0; step < bad_step; ++step) EXPECT_EQ(prefetcher.next(step).loaded_rows(), 8);
        try {
            prefetcher.next(bad_step);
            FAIL() << "depth " << depth << ": the corrupt sample was not reported";
        } catch (const Error& e) {
            EXPECT_EQ(std::string(e.what()), "one-bad: sample " + std::to_string(permutation[bad_step * 8 + 5]) +
                                                 " is corrupt");
        }
    }
}

// Leaving early (a stop signal, an error elsewhere) with batches still
// loaded ahead, or before the first one is asked for, joins the thread.
TEST(EnginePrefetch, DestroyingWithBatchesPendingReturns) {
    const RunConfig config = small_config();
    auto data = make_train_dataset(config.data);
    const BatchLayout layout = layout_of(config, 8);
    { BatchPrefetcher untouched(*data, layout, plain_host_memory(), {kSeed, data->size(), 8, 0, 8}, {}, 0, 1000, 3); }
    BatchPrefetcher prefetcher(*data, layout, plain_host_memory(), {kSeed, data->size(), 8, 0, 8}, {}, 0, 1000, 3);
    EXPECT_EQ(prefetcher.next(0).loaded_rows(), 8);
}

}  // namespace
}  // namespace ladon::engine
