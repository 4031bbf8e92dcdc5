// The Gramian solvers (engine/weighting/gramian.hpp) against
// tests/mtl/gramian_reference.py, which computes each method from the papers'
// equations on the gradient vectors themselves, with NumPy. The script runs
// once per test process; its cases carry J, so each method's direction J^T w
// is compared (unique even where G is singular), and its weights too where
// they are unique.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include "ladon/error.hpp"
#include <string>
#include <vector>

#include "engine/weighting/gramian.hpp"

namespace ladon::engine {
namespace {

using nlohmann::json;

// Iterative solvers stop at a tolerance; the closed forms differ from the
// reference only by rounding.
constexpr double kIterativeTolerance = 1e-7;
constexpr double kClosedFormTolerance = 1e-10;

struct ReferenceCase {
    std::string name;
    int tasks = 0;
    int dim = 0;
    std::vector<double> jacobian;  // tasks x dim, row t = task t's gradient
    std::vector<double> gramian;   // tasks x tasks
    bool weights_unique = false;
    json methods;  // the whole case: expected values per method

    std::vector<double> direction(const std::vector<double>& weights) const {  // J^T w
        std::vector<double> combined(dim, 0.0);
        for (int t = 0; t < tasks; ++t)
            for (int d = 0; d < dim; ++d) combined[d] += weights[t] * jacobian[t * dim + d];
        return combined;
    }
    double largest_gradient_entry() const {
        double largest = 0.0;
        for (double x : jacobian) largest = std::max(largest, std::abs(x));
        return largest;
    }
};

std::string run_reference_script() {
    const std::string command = std::string(LADON_PYTHON) + " " + LADON_GRAMIAN_REFERENCE;
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
    if (!pipe) throw std::runtime_error("could not start: " + command);
    std::string output;
    char buffer[4096];
    for (std::size_t read; (read = std::fread(buffer, 1, sizeof buffer, pipe.get())) > 0;) output.append(buffer, read);
    if (pclose(pipe.release()) != 0) throw std::runtime_error(command + " failed; its output: " + output);
    return output;
}

std::vector<double> flattened(const json& rows) {
    std::vector<double> values;
    for (const json& row : rows)
        for (const json& x : row) values.push_back(x.get<double>());
    return values;
}

const std::vector<ReferenceCase>& reference_cases() {
    static const std::vector<ReferenceCase> cases = [] {
        std::vector<ReferenceCase> parsed;
        const json document = json::parse(run_reference_script());
        for (const json& item : document.at("cases")) {
            ReferenceCase c;
            c.name = item.at("name").get<std::string>();
            c.tasks = item.at("tasks").get<int>();
            c.jacobian = flattened(item.at("J"));
            c.dim = int(c.jacobian.size()) / c.tasks;
            c.gramian = flattened(item.at("G"));
            c.weights_unique = item.at("weights_unique").get<bool>();
            c.methods = item;
            parsed.push_back(std::move(c));
        }
        return parsed;
    }();
    return cases;
}

// |actual - expected| <= tolerance * scale, entry by entry.
void expect_near_all(const std::vector<double>& actual, const std::vector<double>& expected, double tolerance,
                     double scale, const char* what) {
    ASSERT_EQ(actual.size(), expected.size()) << what;
    for (std::size_t k = 0; k < actual.size(); ++k)
        EXPECT_NEAR(actual[k], expected[k], tolerance * std::max(scale, 1e-300)) << what << " entry " << k;
}

void expect_direction(const ReferenceCase& c, const std::vector<double>& weights, const json& expected,
                      double tolerance) {
    expect_near_all(c.direction(weights), expected.get<std::vector<double>>(), tolerance, c.largest_gradient_entry(),
                    "direction J^T w");
}

TEST(GramianReference, TheScriptGivesCasesOfEverySizeIncludingASingularGramian) {
    const auto& cases = reference_cases();
    ASSERT_GE(cases.size(), 6u);
    EXPECT_TRUE(std::any_of(cases.begin(), cases.end(), [](const ReferenceCase& c) { return !c.weights_unique; }));
    EXPECT_TRUE(std::any_of(cases.begin(), cases.end(), [](const ReferenceCase& c) { return c.tasks == 1; }));
    EXPECT_TRUE(std::any_of(cases.begin(), cases.end(), [](const ReferenceCase& c) { return c.tasks >= 4; }));
}

TEST(GramianReference, MgdaIsTheMinNormPointOfTheHull) {
    for (const ReferenceCase& c : reference_cases()) {
        SCOPED_TRACE(c.name);
        const std::vector<double> weights = mgda_weights(c.gramian, c.tasks);
        expect_direction(c, weights, c.methods["mgda"]["direction"], kIterativeTolerance);
        if (c.weights_unique)
            expect_near_all(weights, c.methods["mgda"]["weights"].get<std::vector<double>>(), kIterativeTolerance, 1.0,
                            "weights");
    }
}

TEST(GramianReference, PcgradOrdersFollowTheDocumentedShuffle) {
    for (const ReferenceCase& c : reference_cases()) {
        SCOPED_TRACE(c.name);
        const json& pcgrad = c.methods["pcgrad"];
        EXPECT_EQ(pcgrad_task_orders(c.tasks, pcgrad["seed"].get<std::uint64_t>()),
                  pcgrad["orders"].get<std::vector<std::vector<int>>>());
    }
}

TEST(GramianReference, PcgradEqualsProjectingTheActualGradients) {
    for (const ReferenceCase& c : reference_cases()) {
        SCOPED_TRACE(c.name);
        const json& pcgrad = c.methods["pcgrad"];
        const PcgradOptions options{.seed = pcgrad["seed"].get<std::uint64_t>()};
        expect_direction(c, pcgrad_weights(c.gramian, c.tasks, options), pcgrad["direction"], kClosedFormTolerance);
    }
}

TEST(GramianReference, CagradEqualsThePapersDirectionAndTheOfficialRescaling) {
    for (const ReferenceCase& c : reference_cases()) {
        SCOPED_TRACE(c.name);
        const json& cagrad = c.methods["cagrad"];
        CagradOptions options{.c = cagrad["c"].get<double>()};
        expect_direction(c, cagrad_weights(c.gramian, c.tasks, options), cagrad["direction"], kIterativeTolerance);
        options.rescale_like_official_code = true;
        expect_direction(c, cagrad_weights(c.gramian, c.tasks, options), cagrad["rescaled_direction"],
                         kIterativeTolerance);
    }
}

TEST(GramianReference, ImtlGEqualsThePapersAlphaOnUnitVectors) {
    int compared = 0, singular = 0;
    for (const ReferenceCase& c : reference_cases()) {
        SCOPED_TRACE(c.name);
        if (!c.methods.contains("imtl_g")) {
            EXPECT_THROW(imtl_g_weights(c.gramian, c.tasks), ladon::Error);
            ++singular;
            continue;
        }
        const std::vector<double> weights = imtl_g_weights(c.gramian, c.tasks);
        expect_direction(c, weights, c.methods["imtl_g"]["direction"], kClosedFormTolerance);
        expect_near_all(weights, c.methods["imtl_g"]["weights"].get<std::vector<double>>(), 1e-8, 1.0, "weights");
        ++compared;
    }
    EXPECT_GE(compared, 6);
    EXPECT_GE(singular, 1);
}

TEST(GramianReference, AlignedMtlEqualsTheBalancedSvdOfTheGradients) {
    for (const ReferenceCase& c : reference_cases()) {
        SCOPED_TRACE(c.name);
        const json& aligned = c.methods["aligned_mtl"];
        const AlignedMtlOptions options{.preferences = aligned["preferences"].get<std::vector<double>>()};
        expect_direction(c, aligned_mtl_weights(c.gramian, c.tasks, options), aligned["direction"], 1e-9);
    }
}

TEST(GramianReference, UpgradEqualsTheMeanProjectionOntoTheDualCone) {
    for (const ReferenceCase& c : reference_cases()) {
        SCOPED_TRACE(c.name);
        expect_direction(c, upgrad_weights(c.gramian, c.tasks), c.methods["upgrad"]["direction"], kIterativeTolerance);
    }
}

TEST(GramianReference, GradNormStepEqualsFiniteDifferencesOfItsLoss) {
    for (const ReferenceCase& c : reference_cases()) {
        SCOPED_TRACE(c.name);
        const json& gradnorm = c.methods["gradnorm"];
        const GradNormOptions options{.alpha = gradnorm["alpha"].get<double>(),
                                      .learning_rate = gradnorm["learning_rate"].get<double>()};
        const std::vector<double> updated =
            gradnorm_weights(c.gramian, c.tasks, gradnorm["weights"].get<std::vector<double>>(),
                             gradnorm["initial_losses"].get<std::vector<double>>(),
                             gradnorm["losses"].get<std::vector<double>>(), options);
        // The reference's central differences are exact up to rounding of h = 1e-7.
        expect_near_all(updated, gradnorm["updated_weights"].get<std::vector<double>>(), 1e-7, 1.0, "weights");
    }
}

}  // namespace
}  // namespace ladon::engine
