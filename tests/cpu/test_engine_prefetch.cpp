// The background batch prefetcher gives exactly the batches the loader gives
// for the same steps, across epochs and with augmentation; a failure while
// loading reaches the caller at the step it belongs to.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/batch_loader.hpp"
#include "engine/cpu_executor.hpp"
#include "ladon/config.hpp"
#include "ladon/dataset.hpp"
#include "ladon/error.hpp"

namespace ladon::engine {
namespace {

constexpr uint64_t kSeed = 3;

std::unique_ptr<CpuExecutor> make_executor(const RunConfig& config, int64_t batch) {
    return std::make_unique<CpuExecutor>(build_graph(config.model, batch), ExecutorOptions{});
}

RunConfig small_config() {
    RunConfig config = default_run_config();
    config.data.train_size = 44;  // 5 steps of 8 an epoch, 4 samples left over
    return config;
}

// Everything a step's batch consists of, as the executor holds it.
std::vector<float> staged(Executor& executor) {
    const int64_t batch = executor.batch();
    EXPECT_EQ(executor.graph().tensors[0].shape.batch, batch);
    // Tensor 0's shape includes the batch.
    std::vector<float> all(executor.input(), executor.input() + executor.graph().tensors[0].shape.elements());
    for (int h = 0; h < int(executor.graph().heads.size()); ++h) {
        all.insert(all.end(), executor.targets(h), executor.targets(h) + batch * executor.target_floats(h));
        all.insert(all.end(), executor.mask(h), executor.mask(h) + batch);
    }
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
// steps, a shift and a flip: after each next() the executor holds what
// BatchLoader::load stages for the same rows and step, bit for bit, for any
// depth.
TEST(EnginePrefetch, BatchesAreTheLoadersBitForBit) {
    const RunConfig config = small_config();
    auto data = make_train_dataset(config.data);
    const Augmentation augmentation{2, true, {"box"}, kSeed, 4};
    const StepOrder order{kSeed, data->size(), 8, 4, 4};
    ASSERT_EQ(order.steps_per_epoch(), 5);
    auto reference = make_executor(config, 4);
    BatchLoader loader(*data, *reference, augmentation);
    for (int depth : {1, 2, 3}) {
        auto executor = make_executor(config, 4);
        const int64_t first = 2, last = 14;  // from inside epoch 1 to inside epoch 3
        BatchPrefetcher prefetcher(*data, *executor, order, augmentation, first, last, depth);
        std::vector<int64_t> permutation;
        // The activation after the input in the arena: next() must not write
        // past the input (a slot sized batch x batch once did).
        const TensorShape& after = executor->graph().tensors[1].shape;
        auto* neighbour = const_cast<float*>(executor->tensor_value(1));
        for (int64_t step = first; step < last; ++step) {
            std::fill(neighbour, neighbour + after.elements(), 12345.0f);
            EXPECT_EQ(prefetcher.next(step), 4);
            EXPECT_EQ(std::count(neighbour, neighbour + after.elements(), 12345.0f), after.elements())
                << "step " << step << ": next() wrote past the input";
            shuffled_indices(kSeed, step / 5 + 1, permutation, data->size());
            loader.load(std::span<const int64_t>(permutation.data() + (step % 5) * 8 + 4, 4), step);
            const std::vector<float> expected = staged(*reference), actual = staged(*executor);
            ASSERT_EQ(expected, actual) << "depth " << depth << ", step " << step;
        }
    }
}

TEST(EnginePrefetch, StepsOutOfOrderOrPastTheEndAreErrors) {
    const RunConfig config = small_config();
    auto data = make_train_dataset(config.data);
    auto executor = make_executor(config, 8);
    BatchPrefetcher prefetcher(*data, *executor, {kSeed, data->size(), 8, 0, 8}, {}, 0, 2);
    try {
        prefetcher.next(1);
        FAIL() << "step 1 before step 0";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("asked for step 1, but the next prefetched step is 0"), std::string::npos)
            << e.what();
    }
    EXPECT_EQ(prefetcher.next(0), 8);
    EXPECT_EQ(prefetcher.next(1), 8);
    EXPECT_THROW(prefetcher.next(2), Error);
    EXPECT_THROW(BatchPrefetcher(*data, *executor, {kSeed, data->size(), 8, 0, 8}, {}, 0, 2, 0), Error);
    EXPECT_THROW(BatchPrefetcher(*data, *executor, {kSeed, data->size(), 8, 4, 8}, {}, 0, 2), Error);
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
        auto executor = make_executor(config, 8);
        BatchPrefetcher prefetcher(data, *executor, {kSeed, data.size(), 8, 0, 8}, {}, 0, 5, depth);
        for (int64_t step = 0; step < bad_step; ++step) EXPECT_EQ(prefetcher.next(step), 8);
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
    auto executor = make_executor(config, 8);
    { BatchPrefetcher untouched(*data, *executor, {kSeed, data->size(), 8, 0, 8}, {}, 0, 1000, 3); }
    BatchPrefetcher prefetcher(*data, *executor, {kSeed, data->size(), 8, 0, 8}, {}, 0, 1000, 3);
    EXPECT_EQ(prefetcher.next(0), 8);
}

}  // namespace
}  // namespace ladon::engine
