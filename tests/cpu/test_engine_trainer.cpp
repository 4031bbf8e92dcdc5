// The Trainer end to end on the synthetic shapes, its errors, and the
// learning-rate schedules.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "ladon/config.hpp"
#include "ladon/dataset.hpp"
#include "ladon/error.hpp"
#include "ladon/training.hpp"

namespace ladon {
namespace {

const TaskMetric& metric_of(const std::vector<TaskMetric>& metrics, const std::string& task) {
    for (const TaskMetric& metric : metrics)
        if (metric.task == task) return metric;
    throw std::runtime_error("no metric for task " + task);
}

// The message of the ladon::Error that fn() throws ("" if none).
template <typename Fn>
std::string error_of(Fn&& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// A small synthetic run config: the default model, small datasets.
RunConfig small_config() {
    RunConfig config = default_run_config();
    config.data.train_size = 256;
    config.data.test_size = 128;
    return config;
}

// The default model with leaky ReLUs. The CPU ReLU kernel maps NaN to 0
// (x > 0 ? x : 0), where PyTorch's ReLU propagates it, so behind a ReLU a NaN
// weight or input can leave every loss finite; leaky ReLU propagates NaN.
RunConfig leaky_config() {
    RunConfig config = small_config();
    for (LayerSpec& layer : config.model.trunk)
        if (layer.op == OpKind::relu) layer.op = OpKind::leaky_relu;
    return config;
}

// The synthetic dataset with one thing spoilt in every sample.
class SpoiltDataset final : public Dataset {
public:
    enum class Spoil { infinite_image, nan_box_target, failing_sample };
    SpoiltDataset(std::unique_ptr<Dataset> inner, Spoil spoil) : inner_(std::move(inner)), spoil_(spoil) {}
    std::string name() const override { return "spoilt"; }
    int64_t size() const override { return inner_->size(); }
    SampleShape sample_shape() const override { return inner_->sample_shape(); }
    const std::vector<TaskInfo>& tasks() const override { return inner_->tasks(); }
    void load(int64_t index, float* image, std::span<float* const> targets, float* present) const override {
        if (spoil_ == Spoil::failing_sample && index % 7 == 3)
            throw Error("spoilt dataset: sample " + std::to_string(index) + " cannot be read");
        inner_->load(index, image, targets, present);
        if (spoil_ == Spoil::infinite_image) image[0] = std::numeric_limits<float>::infinity();
        if (spoil_ == Spoil::nan_box_target) targets[2][1] = std::numeric_limits<float>::quiet_NaN();
    }

private:
    std::unique_ptr<Dataset> inner_;
    Spoil spoil_;
};

TEST(EngineTrainer, DefaultSyntheticModelReaches95PercentShapeAccuracyInFourEpochs) {
    RunConfig config = default_run_config();
    config.training.epochs = 4;
    auto train = make_train_dataset(config.data);
    auto test = make_test_dataset(config.data);
    Trainer trainer(config.model, config.training);
    int calls = 0;
    const auto reports = trainer.fit(*train, test.get(), [&](const EpochReport&) { ++calls; });
    ASSERT_EQ(reports.size(), 4u);
    EXPECT_EQ(calls, 4);
    EXPECT_EQ(reports.back().steps, 4 * 4096 / 32);
    EXPECT_EQ(reports.back().samples, 4096);
    const TaskMetric& shape = metric_of(reports.back().test, "shape");
    EXPECT_EQ(shape.metric, "accuracy");
    EXPECT_GE(shape.value, 0.95);
    EXPECT_LT(shape.loss, metric_of(reports.front().train, "shape").loss);
    EXPECT_GE(metric_of(reports.back().test, "filled").value, 0.95);
    const TaskMetric& box = metric_of(reports.back().test, "box");
    EXPECT_EQ(box.metric, "mae");
    EXPECT_LT(box.value, 0.1);  // coordinates are fractions of the canvas
}

TEST(EngineTrainer, SameSeedGivesBitwiseIdenticalRunsAndAnotherSeedDoesNot) {
    auto run = [](uint64_t seed) {
        RunConfig config = small_config();
        config.training.seed = seed;
        config.training.max_steps = 20;
        config.training.batch_size = 8;
        auto train = make_train_dataset(config.data);
        auto test = make_test_dataset(config.data);
        Trainer trainer(config.model, config.training);
        const auto reports = trainer.fit(*train, nullptr);
        std::vector<double> numbers;
        for (const auto& report : reports)
            for (const TaskMetric& metric : report.train) numbers.insert(numbers.end(), {metric.loss, metric.value});
        for (const TaskMetric& metric : trainer.evaluate(*test))
            numbers.insert(numbers.end(), {metric.loss, metric.value});
        return numbers;
    };
    const std::vector<double> first = run(1), second = run(1), other = run(2);
    ASSERT_EQ(first.size(), 12u);
    EXPECT_EQ(first, second);  // exact
    EXPECT_NE(first, other);
}

// Batches loaded ahead on a background thread are the batches loaded in the
// training thread: the same losses and metrics, bit for bit, with
// augmentation, over an epoch boundary (the tool's resume test runs with
// the default prefetch, so a resumed run starts it mid-epoch).
TEST(EngineTrainer, PrefetchingBatchesChangesNoBit) {
    auto run = [](int prefetch) {
        RunConfig config = small_config();
        config.training.max_steps = 40;  // 32 steps an epoch
        config.training.batch_size = 8;
        config.training.augmentation.max_shift = 2;
        config.training.augmentation.horizontal_flip = true;
        config.training.augmentation.box_tasks = {"box"};
        config.training.prefetch_batches = prefetch;
        auto train = make_train_dataset(config.data);
        Trainer trainer(config.model, config.training);
        std::vector<float> losses;
        Trainer::Callbacks callbacks;
        callbacks.on_step = [&](const StepReport& report) {
            losses.insert(losses.end(), report.losses.begin(), report.losses.end());
            return true;
        };
        trainer.fit(*train, nullptr, callbacks);
        return losses;
    };
    const std::vector<float> here = run(0), ahead = run(2), deep = run(5);
    ASSERT_EQ(here.size(), 40u * 3u);
    EXPECT_EQ(here, ahead);
    EXPECT_EQ(here, deep);
}

TEST(EngineTrainer, MaxStepsStopsMidEpoch) {
    RunConfig config = small_config();
    config.training.epochs = 5;
    config.training.max_steps = 11;
    config.training.batch_size = 16;  // 16 steps an epoch
    auto train = make_train_dataset(config.data);
    Trainer trainer(config.model, config.training);
    const auto reports = trainer.fit(*train, nullptr);
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_EQ(reports[0].steps, 11);
    EXPECT_EQ(reports[0].samples, 11 * 16);
    EXPECT_TRUE(reports[0].test.empty());
}

TEST(EngineTrainer, EvaluateCountsThePartialLastBatchOnce) {
    RunConfig config = small_config();
    config.training.batch_size = 32;
    config.data.test_size = 50;  // one full batch and 18 rows
    auto test = make_test_dataset(config.data);
    Trainer trainer(config.model, config.training);
    const auto metrics = trainer.evaluate(*test);
    ASSERT_EQ(metrics.size(), 3u);
    // Accuracy over 50 samples is a multiple of 1/50, not of 1/64.
    const double correct = metric_of(metrics, "shape").value * 50.0;
    EXPECT_NEAR(correct, std::round(correct), 1e-9);
    EXPECT_GT(metric_of(metrics, "shape").loss, 0.0);
}

TEST(EngineTrainer, HeadWithoutATaskOfItsNameIsAnErrorListingTheTasks) {
    RunConfig config = small_config();
    config.model.heads[1].name = "colour";
    auto train = make_train_dataset(config.data);
    Trainer trainer(config.model, config.training);
    const std::string message = error_of([&] { trainer.fit(*train, nullptr); });
    EXPECT_NE(message.find("head 'colour' has no task of that name in dataset 'synthetic'"), std::string::npos)
        << message;
    EXPECT_NE(message.find("shape, filled, box"), std::string::npos) << message;
}

TEST(EngineTrainer, CrossEntropyHeadOnARegressionTaskIsAnError) {
    RunConfig config = small_config();
    config.model.heads[2].loss = Loss::softmax_cross_entropy;  // "box" is a regression task
    auto train = make_train_dataset(config.data);
    Trainer trainer(config.model, config.training);
    const std::string message = error_of([&] { trainer.fit(*train, nullptr); });
    EXPECT_NE(message.find("head 'box' uses softmax_cross_entropy loss, which needs a classes task"), std::string::npos)
        << message;
    EXPECT_NE(message.find("regression"), std::string::npos) << message;
}

TEST(EngineTrainer, HeadWidthThatDoesNotMatchTheTaskIsAnError) {
    RunConfig config = small_config();
    config.model.heads[0].layers.back().out_features = 3;  // "shape" has 4 classes
    auto train = make_train_dataset(config.data);
    Trainer trainer(config.model, config.training);
    const std::string message = error_of([&] { trainer.fit(*train, nullptr); });
    EXPECT_NE(message.find("head 'shape' outputs 3 values per sample"), std::string::npos) << message;
    EXPECT_NE(message.find("width 4 (classes)"), std::string::npos) << message;
}

TEST(EngineTrainer, SampleShapeThatDoesNotMatchTheModelIsAnError) {
    RunConfig config = small_config();
    config.data.canvas = 20;
    auto train = make_train_dataset(config.data);
    Trainer trainer(config.model, config.training);
    const std::string message = error_of([&] { trainer.fit(*train, nullptr); });
    EXPECT_NE(message.find("[1, 20, 20]"), std::string::npos) << message;
    EXPECT_NE(message.find("[1, 24, 24]"), std::string::npos) << message;
}

TEST(EngineTrainer, DatasetSmallerThanOneBatchIsAnError) {
    RunConfig config = small_config();
    config.data.train_size = 10;
    auto train = make_train_dataset(config.data);
    Trainer trainer(config.model, config.training);
    const std::string message = error_of([&] { trainer.fit(*train, nullptr); });
    EXPECT_NE(message.find("has 10 samples, fewer than one batch of 32"), std::string::npos) << message;
}

TEST(EngineTrainer, InvalidOptionsAreErrors) {
    RunConfig config = small_config();
    config.training.batch_size = 0;
    EXPECT_NE(error_of([&] { Trainer(config.model, config.training); }).find("batch_size must be positive, got 0"),
              std::string::npos);
    config = small_config();
    config.training.optimizer.learning_rate = -1.0f;
    EXPECT_NE(error_of([&] { Trainer(config.model, config.training); }).find("learning_rate must be positive"),
              std::string::npos);
    config = small_config();
    config.training.epochs = 0;
    EXPECT_NE(error_of([&] { Trainer(config.model, config.training); }).find("epochs must be positive"),
              std::string::npos);
}

TEST(EngineTrainer, InfiniteInputStopsWithAnErrorNamingTaskAndStep) {
    RunConfig config = leaky_config();
    SpoiltDataset train(make_train_dataset(config.data), SpoiltDataset::Spoil::infinite_image);
    Trainer trainer(config.model, config.training);
    const std::string message = error_of([&] { trainer.fit(train, nullptr); });
    EXPECT_NE(message.find("the loss of task 'shape' is"), std::string::npos) << message;
    EXPECT_NE(message.find("is NaN at step 1 (epoch 1); stopping"), std::string::npos) << message;  // "nan" or "-nan"
}

TEST(EngineTrainer, NanRegressionTargetStopsWithAnErrorNamingThatTask) {
    RunConfig config = small_config();
    SpoiltDataset train(make_train_dataset(config.data), SpoiltDataset::Spoil::nan_box_target);
    Trainer trainer(config.model, config.training);
    const std::string message = error_of([&] { trainer.fit(train, nullptr); });
    EXPECT_NE(message.find("the loss of task 'box' is"), std::string::npos) << message;
    EXPECT_NE(message.find("is NaN at step 1 (epoch 1)"), std::string::npos) << message;
}

TEST(EngineTrainer, DivergingLearningRateStopsWithAnErrorNamingTheStep) {
    RunConfig config = leaky_config();
    config.training.optimizer.learning_rate = 1e30f;
    auto train = make_train_dataset(config.data);
    Trainer trainer(config.model, config.training);
    const std::string message = error_of([&] { trainer.fit(*train, nullptr); });
    EXPECT_NE(message.find("the loss of task 'shape' is"), std::string::npos) << message;
    EXPECT_NE(message.find("at step 2 (epoch 1); stopping"), std::string::npos) << message;
}

// Disabled until the CPU ReLU propagates NaN: with plain ReLUs the weights
// turn NaN after step 2 but the losses stay finite (about 1e30), so the run
// never stops. Enable it together with that kernel fix.
TEST(EngineTrainer, DivergingLearningRateStopsBehindReLUs) {
    RunConfig config = small_config();
    config.training.optimizer.learning_rate = 1e30f;
    auto train = make_train_dataset(config.data);
    Trainer trainer(config.model, config.training);
    const std::string message = error_of([&] { trainer.fit(*train, nullptr); });
    EXPECT_NE(message.find("the loss of task"), std::string::npos) << message;
}

TEST(EngineTrainer, SampleThatCannotBeReadIsAnErrorNotAnAbort) {
    // Samples load in an OpenMP loop; the dataset's exception must reach the caller.
    RunConfig config = small_config();
    SpoiltDataset train(make_train_dataset(config.data), SpoiltDataset::Spoil::failing_sample);
    config.training.prefetch_batches = 2;  // loaded on the background thread
    Trainer trainer(config.model, config.training);
    const std::string message = error_of([&] { trainer.fit(train, nullptr); });
    EXPECT_NE(message.find("spoilt dataset: sample"), std::string::npos) << message;
    EXPECT_NE(message.find("cannot be read"), std::string::npos) << message;
    EXPECT_NE(error_of([&] { trainer.evaluate(train); }).find("sample 3 cannot be read"), std::string::npos);

    // The same in the training thread, without the prefetcher.
    config.training.prefetch_batches = 0;
    Trainer here(config.model, config.training);
    const std::string without = error_of([&] { here.fit(train, nullptr); });
    EXPECT_EQ(message, without);
}

TEST(EngineTrainer, MemoryPlanAndParameterCountDescribeTheDefaultModel) {
    RunConfig config = default_run_config();
    Trainer trainer(config.model, config.training);
    // conv 1->16 3x3, conv 16->32 3x3, dense 32*6*6 -> 64, heads 64 -> 4, 1, 4.
    const int64_t parameters =
        (16 * 9 + 16) + (32 * 16 * 9 + 32) + (64 * 1152 + 64) + (4 * 64 + 4) + (64 + 1) + (4 * 64 + 4);
    EXPECT_EQ(trainer.parameter_count(), parameters);
    const auto plan = trainer.memory_plan();
    EXPECT_EQ(plan.parameters, 4 * parameters);  // no batch norm: no running statistics
    EXPECT_EQ(plan.gradients, 4 * parameters);
    EXPECT_EQ(plan.optimizer_state, 8 * parameters);           // adamw
    EXPECT_GT(plan.activations, 2 * 4 * 32 * (16 * 24 * 24));  // at least the first conv's value and gradient
}

// ---------------------------------------------------------------- schedules

TEST(EngineSchedule, ConstantKeepsTheBaseRate) {
    ScheduleOptions schedule;
    EXPECT_EQ(learning_rate_at(schedule, 0.01f, 0), 0.01f);
    EXPECT_EQ(learning_rate_at(schedule, 0.01f, 123456), 0.01f);
}

TEST(EngineSchedule, StepMultipliesByGammaEveryStepSize) {
    ScheduleOptions schedule;
    schedule.kind = ScheduleOptions::Kind::step;
    schedule.step_size = 10;
    schedule.gamma = 0.5f;
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 0.8f, 0), 0.8f);
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 0.8f, 9), 0.8f);
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 0.8f, 10), 0.4f);
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 0.8f, 19), 0.4f);
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 0.8f, 25), 0.2f);
}

TEST(EngineSchedule, CosineRunsFromBaseThroughMidpointToTheFloor) {
    ScheduleOptions schedule;
    schedule.kind = ScheduleOptions::Kind::cosine;
    schedule.total_steps = 100;
    schedule.min_learning_rate = 0.1f;
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 1.0f, 0), 1.0f);
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 1.0f, 50), 0.55f);
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 1.0f, 25), 0.1f + 0.9f * 0.5f * (1.0f + std::cos(0.25f * 3.14159265f)));
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 1.0f, 100), 0.1f);
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 1.0f, 150), 0.1f);  // stays at the floor
    EXPECT_GT(learning_rate_at(schedule, 1.0f, 30), learning_rate_at(schedule, 1.0f, 31));
}

TEST(EngineSchedule, LinearWarmupRisesToTheBaseRateThenTheScheduleStarts) {
    ScheduleOptions schedule;
    schedule.warmup_steps = 4;
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 2.0f, 0), 0.5f);
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 2.0f, 1), 1.0f);
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 2.0f, 2), 1.5f);
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 2.0f, 3), 2.0f);
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 2.0f, 4), 2.0f);

    schedule.kind = ScheduleOptions::Kind::cosine;
    schedule.total_steps = 24;  // 20 steps of decay after the warm-up
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 2.0f, 4), 2.0f);
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 2.0f, 14), 1.0f);
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 2.0f, 24), 0.0f);

    schedule.kind = ScheduleOptions::Kind::step;
    schedule.step_size = 5;
    schedule.gamma = 0.1f;
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 2.0f, 8), 2.0f);  // 4 steps after the warm-up
    EXPECT_FLOAT_EQ(learning_rate_at(schedule, 2.0f, 9), 0.2f);  // 5 steps after
}

}  // namespace
}  // namespace ladon
