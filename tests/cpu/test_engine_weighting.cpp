// The task-weighting table (engine/weighting/): every TaskWeighting value has
// one method with a unique config name, read and written by the config; the
// fixed weights are the configured ones; uncertainty weighting's gradients
// match finite differences of the total loss it defines; random loss
// weighting draws softmax(z) per step, z ~ N(0, 1), reproducibly.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <set>
#include <string>
#include <vector>

#include "engine/weighting/weighting.hpp"
#include "ladon/config.hpp"
#include "kernels/ops.hpp"
#include "ladon/error.hpp"

namespace ladon::engine {
namespace {

constexpr TaskWeighting kEveryMethod[] = {TaskWeighting::fixed, TaskWeighting::uncertainty, TaskWeighting::rlw};

TEST(EngineWeighting, EveryKindHasOneMethodWithAUniqueNameThatConfigsReadAndWrite) {
    std::set<std::string> names;
    for (TaskWeighting kind : kEveryMethod) {
        const TaskWeightingMethod& method = task_weighting_method(kind);
        EXPECT_EQ(method.kind, kind) << method.name;
        EXPECT_TRUE(names.insert(method.name).second) << method.name;
        EXPECT_EQ(find_task_weighting(method.name), &method);
        EXPECT_NE(method.weights, nullptr) << method.name;
        EXPECT_NE(method.loss_term, nullptr) << method.name;
        EXPECT_EQ(method.parameters_per_head > 0, method.parameter_name != nullptr) << method.name;
        RunConfig config = default_run_config();
        config.training.task_weighting = kind;
        const std::string text = to_toml(config);
        EXPECT_NE(text.find(std::string("task_weighting = \"") + method.name + "\""), std::string::npos) << text;
        EXPECT_EQ(parse_run_config(text, "written.toml").training.task_weighting, kind) << method.name;
    }
    EXPECT_EQ(task_weighting_methods().size(), std::size(kEveryMethod));
    EXPECT_EQ(find_task_weighting("gradnorm_but_misspelt"), nullptr);
}

TEST(EngineWeighting, AnUnknownMethodIsAnErrorListingTheMethods) {
    RunConfig config = default_run_config();
    std::string text = to_toml(config);
    const std::string key = "task_weighting = \"fixed\"";
    ASSERT_NE(text.find(key), std::string::npos);
    text.replace(text.find(key), key.size(), "task_weighting = \"dwa\"");
    try {
        parse_run_config(text, "run.toml");
        FAIL() << "no error";
    } catch (const Error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("training.task_weighting: unknown value \"dwa\"; expected one of: fixed, uncertainty, rlw"),
                  std::string::npos)
            << message;
    }
}

TEST(EngineWeighting, FixedWeightsAreTheConfiguredOnesAndLearnNothing) {
    const TaskWeightingMethod& fixed = task_weighting_method(TaskWeighting::fixed);
    const std::vector<float> base = {1.0f, 0.5f, 2.0f}, losses = {3.0f, 4.0f, 5.0f};
    std::vector<float> weights(3, -1.0f);
    fixed.weights(base, {}, weights);
    EXPECT_EQ(weights, base);
    EXPECT_EQ(fixed.loss_term(losses, weights, {}, {}), 0.0);
    EXPECT_EQ(fixed.parameters_per_head, 0);
}

// total(s) = sum_h w_h(s) L_h + term(s), with the losses held fixed: the
// gradient loss_term writes is d total / d s.
TEST(EngineWeighting, UncertaintyGradientsMatchFiniteDifferencesOfTheTotalLoss) {
    const TaskWeightingMethod& method = task_weighting_method(TaskWeighting::uncertainty);
    const std::vector<float> base = {1.0f, 0.5f, 2.0f}, losses = {0.7f, 2.5f, 0.05f};
    std::vector<float> learned = {0.3f, -0.8f, 1.2f}, weights(3), gradients(3), scratch(3);
    auto total = [&] {
        method.weights(base, learned, weights);
        double sum = 0.0;
        for (int h = 0; h < 3; ++h) sum += double(weights[h]) * losses[h];
        return sum + method.loss_term(losses, weights, learned, scratch);
    };
    total();
    method.loss_term(losses, weights, learned, gradients);
    for (int h = 0; h < 3; ++h) EXPECT_NEAR(weights[h], base[h] * std::exp(-learned[h]), 1e-6);
    for (int h = 0; h < 3; ++h) {
        const float original = learned[h], step = 1e-2f;
        learned[h] = original + step;
        const double plus = total();
        learned[h] = original - step;
        const double minus = total();
        learned[h] = original;
        EXPECT_NEAR(gradients[h], (plus - minus) / (2.0 * step), 1e-4) << "head " << h;
    }
}

// RLW (Lin et al., TMLR 2022): the step's base weights are the configured
// ones times softmax(z), with z_h the documented Box-Muller draw of
// (seed, step, h), recomputed here from that definition; the same (seed,
// step) draws the same, another step or seed another; nothing is learned.
TEST(EngineWeighting, RandomLossWeightingIsASeededSoftmaxOfNormalDrawsPerStep) {
    const TaskWeightingMethod& rlw = task_weighting_method(TaskWeighting::rlw);
    ASSERT_NE(rlw.step_base, nullptr);
    EXPECT_EQ(rlw.parameters_per_head, 0);
    const std::vector<float> configured = {1.0f, 0.5f, 2.0f, 1.0f};
    const auto draw = [&](uint64_t seed, int64_t step) {
        std::vector<float> base(configured.size());
        rlw.step_base(seed, step, configured, base);
        return base;
    };
    const auto expected = [&](uint64_t seed, int64_t step) {
        const uint64_t key = ops::mix64(seed ^ ops::mix64(uint64_t(step) ^ 0x524C57ull));
        std::vector<double> e(configured.size());
        double sum = 0.0;
        for (std::size_t h = 0; h < e.size(); ++h) {
            const double u1 = ops::uniform01(key, 2 * h), u2 = ops::uniform01(key, 2 * h + 1);
            sum += e[h] = std::exp(std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * std::numbers::pi * u2));
        }
        for (std::size_t h = 0; h < e.size(); ++h) e[h] = configured[h] * e[h] / sum;
        return e;
    };
    double spread = 0.0;
    for (int64_t step = 0; step < 50; ++step) {
        const std::vector<float> base = draw(7, step);
        const std::vector<double> want = expected(7, step);
        double random_sum = 0.0;
        for (std::size_t h = 0; h < base.size(); ++h) {
            EXPECT_NEAR(base[h], want[h], 1e-6) << "step " << step << " head " << h;
            EXPECT_GT(base[h], 0.0f);
            random_sum += base[h] / configured[h];
        }
        EXPECT_NEAR(random_sum, 1.0, 1e-5) << "the random factors lie on the simplex";
        EXPECT_EQ(base, draw(7, step)) << "the same seed and step draw the same";
        spread = std::max(spread, std::abs(double(base[0]) - double(draw(7, step + 1)[0])));
    }
    EXPECT_GT(spread, 0.05) << "consecutive steps draw different weights";
    EXPECT_NE(draw(7, 3), draw(8, 3)) << "another seed draws differently";
    std::vector<float> weights(configured.size()), gradients;
    const std::vector<float> base = draw(7, 3);
    rlw.weights(base, {}, weights);
    EXPECT_EQ(weights, base);
    EXPECT_EQ(rlw.loss_term({}, weights, {}, gradients), 0.0);
}

}  // namespace
}  // namespace ladon::engine
