// What each Gramian solver (engine/weighting/gramian.hpp) promises, checked on
// random Gramians G = J J^T of up to 12 tasks: MGDA's KKT conditions, PCGrad's
// removed conflicts, CAGrad's ball and worst-task bound, IMTL-G's equal
// projections, Aligned-MTL's orthogonal balanced gradients, UPGrad's
// conflict-free direction, GradNorm's update by hand; two-task closed forms;
// one task; bad Gramians. The shared numerics have their own tests below.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include "ladon/error.hpp"
#include <string>
#include <vector>

#include "engine/weighting/gramian.hpp"
#include "engine/weighting/gramian_numerics.hpp"

namespace ladon::engine {
namespace {

namespace numerics = gramian_numerics;

struct Gradients {
    int tasks = 0, dim = 0;
    std::vector<double> jacobian;  // tasks x dim
    std::vector<double> gramian;   // tasks x tasks
};

// Gaussian gradients, task t scaled by scales[t % size] (different sizes pull harder).
Gradients random_gradients(int tasks, int dim, std::uint64_t seed, std::vector<double> scales = {1.0}) {
    std::mt19937_64 engine(seed);
    std::normal_distribution<double> normal;
    Gradients g{tasks, dim, std::vector<double>(std::size_t(tasks) * dim),
                std::vector<double>(std::size_t(tasks) * tasks)};
    for (int t = 0; t < tasks; ++t)
        for (int d = 0; d < dim; ++d) g.jacobian[t * dim + d] = scales[t % scales.size()] * normal(engine);
    for (int i = 0; i < tasks; ++i)
        for (int j = 0; j < tasks; ++j)
            for (int d = 0; d < dim; ++d) g.gramian[i * tasks + j] += g.jacobian[i * dim + d] * g.jacobian[j * dim + d];
    return g;
}

// Shapes with conflicts, both full rank (dim >= tasks) and singular (dim < tasks).
std::vector<Gradients> gradient_sets() {
    std::vector<Gradients> sets;
    std::uint64_t seed = 1;
    for (int tasks : {2, 3, 5, 8, 12})
        for (int dim : {tasks + 3, std::max(1, tasks / 2)}) sets.push_back(random_gradients(tasks, dim, seed++));
    sets.push_back(random_gradients(6, 10, seed++, {30.0, 1.0, 0.03}));
    return sets;
}

double largest_diagonal(const Gradients& g) {
    double largest = 0.0;
    for (int t = 0; t < g.tasks; ++t) largest = std::max(largest, g.gramian[t * g.tasks + t]);
    return largest;
}

std::vector<double> times_gramian(const Gradients& g, const std::vector<double>& w) {  // (G w)_t = g_t . J^T w
    return numerics::matrix_times_vector(g.gramian, g.tasks, w);
}

#define TRACE_SHAPE(g) SCOPED_TRACE(std::to_string((g).tasks) + " tasks in " + std::to_string((g).dim) + " dimensions")

TEST(GramianSolvers, MgdaWeightsAreOnTheSimplexAndNoTaskGradientShortensTheMinNormPoint) {
    for (const Gradients& g : gradient_sets()) {
        TRACE_SHAPE(g);
        const std::vector<double> w = mgda_weights(g.gramian, g.tasks);
        double sum = 0.0;
        for (double x : w) {
            EXPECT_GE(x, 0.0);
            sum += x;
        }
        EXPECT_NEAR(sum, 1.0, 1e-12);
        // KKT of min w^T G w on the simplex: every vertex is no better, g_t . d >= |d|^2.
        const std::vector<double> gw = times_gramian(g, w);
        const double squared_norm = numerics::dot(w, gw);
        for (int t = 0; t < g.tasks; ++t) EXPECT_GE(gw[t], squared_norm - 1e-10 * largest_diagonal(g)) << "task " << t;
    }
}

TEST(GramianSolvers, MgdaOnTwoTasksIsThePapersClosedFormSegmentPoint) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        const Gradients g = random_gradients(2, 4, seed, {1.0, 0.2 * double(seed)});
        const double g11 = g.gramian[0], g12 = g.gramian[1], g22 = g.gramian[3];
        // Algorithm 1: min over gamma of |gamma g1 + (1 - gamma) g2|, clipped to [0, 1].
        const double gamma = std::clamp((g22 - g12) / (g11 + g22 - 2.0 * g12), 0.0, 1.0);
        const std::vector<double> w = mgda_weights(g.gramian, 2);
        EXPECT_NEAR(w[0], gamma, 1e-12) << "seed " << seed;
        EXPECT_NEAR(w[1], 1.0 - gamma, 1e-12) << "seed " << seed;
    }
}

TEST(GramianSolvers, PcgradOrdersAreReproduciblePermutationsOfTheOtherTasks) {
    const auto orders = pcgrad_task_orders(6, 42);
    EXPECT_EQ(orders, pcgrad_task_orders(6, 42));
    EXPECT_NE(orders, pcgrad_task_orders(6, 43));
    for (int i = 0; i < 6; ++i) {
        std::vector<int> sorted = orders[i], expected;
        std::sort(sorted.begin(), sorted.end());
        for (int j = 0; j < 6; ++j)
            if (j != i) expected.push_back(j);
        EXPECT_EQ(sorted, expected) << "task " << i;
    }
}

TEST(GramianSolvers, PcgradProjectedGradientsNoLongerConflictWithTheLastTaskOfTheirOrder) {
    for (const Gradients& g : gradient_sets()) {
        TRACE_SHAPE(g);
        const PcgradOptions options{.seed = 2024};
        const std::vector<double> coefficients = pcgrad_projected_gradients(g.gramian, g.tasks, options);
        const auto orders = pcgrad_task_orders(g.tasks, options.seed);
        for (int i = 0; i < g.tasks; ++i) {
            const std::vector<double> projected(coefficients.begin() + i * g.tasks,
                                                coefficients.begin() + (i + 1) * g.tasks);
            // Later projections can re-open conflicts with earlier tasks, never with the last one.
            const int last = orders[i].back();
            EXPECT_GE(times_gramian(g, projected)[last], -1e-12 * largest_diagonal(g)) << "task " << i;
            EXPECT_EQ(projected[i], 1.0) << "task " << i << " keeps its own gradient";
        }
        const std::vector<double> weights = pcgrad_weights(g.gramian, g.tasks, options);
        for (int k = 0; k < g.tasks; ++k) {
            double column = 0.0;
            for (int i = 0; i < g.tasks; ++i) column += coefficients[i * g.tasks + k];
            EXPECT_DOUBLE_EQ(weights[k], column);
        }
    }
}

TEST(GramianSolvers, PcgradOnTwoConflictingTasksGivesADirectionThatConflictsWithNeither) {
    int conflicting = 0;
    for (std::uint64_t seed = 1; seed <= 30; ++seed) {
        const Gradients g = random_gradients(2, 3, seed, {1.0, 3.0});
        if (g.gramian[1] >= 0.0) continue;
        ++conflicting;
        const std::vector<double> w = pcgrad_weights(g.gramian, 2);
        // Hand-derived: g1 - (g1.g2 / |g2|^2) g2 + g2 - (g1.g2 / |g1|^2) g1.
        EXPECT_NEAR(w[0], 1.0 - g.gramian[1] / g.gramian[0], 1e-12);
        EXPECT_NEAR(w[1], 1.0 - g.gramian[1] / g.gramian[3], 1e-12);
        for (double inner : times_gramian(g, w)) EXPECT_GE(inner, -1e-12);
    }
    EXPECT_GE(conflicting, 5);
}

TEST(GramianSolvers, PcgradLeavesGradientsThatDoNotConflictAlone) {
    const std::vector<double> agreeing = {4.0, 1.0, 0.0, 1.0, 9.0, 2.0, 0.0, 2.0, 1.0};
    EXPECT_EQ(pcgrad_weights(agreeing, 3), std::vector<double>(3, 1.0));
}

TEST(GramianSolvers, CagradDirectionLiesOnTheBallAndNoPointOfTheBallDoesBetterOnTheWorstTask) {
    std::mt19937_64 engine(7);
    std::normal_distribution<double> normal;
    for (const Gradients& g : gradient_sets()) {
        TRACE_SHAPE(g);
        const CagradOptions options{.c = 0.5};
        const std::vector<double> w = cagrad_weights(g.gramian, g.tasks, options);
        const std::vector<double> mean(g.tasks, 1.0 / g.tasks);
        std::vector<double> offset(g.tasks);  // d - g0 in weights
        for (int t = 0; t < g.tasks; ++t) offset[t] = w[t] - mean[t];
        const double radius = options.c * std::sqrt(numerics::quadratic_form(g.gramian, g.tasks, mean));
        EXPECT_NEAR(std::sqrt(numerics::quadratic_form(g.gramian, g.tasks, offset)), radius, 1e-9 * radius);
        // max_d min_t g_t.d over |d - g0| <= radius: random points on the sphere do no better.
        const std::vector<double> gw = times_gramian(g, w);
        const double worst = *std::min_element(gw.begin(), gw.end());
        for (int trial = 0; trial < 2000; ++trial) {
            std::vector<double> z(g.tasks);
            for (double& x : z) x = normal(engine);
            const double length = std::sqrt(numerics::quadratic_form(g.gramian, g.tasks, z));
            std::vector<double> other(g.tasks);
            for (int t = 0; t < g.tasks; ++t) other[t] = mean[t] + radius * z[t] / length;
            const std::vector<double> other_gw = times_gramian(g, other);
            ASSERT_LE(*std::min_element(other_gw.begin(), other_gw.end()), worst + 1e-9 * largest_diagonal(g))
                << "trial " << trial;
        }
    }
}

TEST(GramianSolvers, CagradWithCZeroIsTheMeanAndTheOfficialRescalingDividesByOnePlusCSquared) {
    const Gradients g = random_gradients(4, 6, 11);
    for (double w : cagrad_weights(g.gramian, 4, {.c = 0.0})) EXPECT_DOUBLE_EQ(w, 0.25);
    const std::vector<double> paper = cagrad_weights(g.gramian, 4, {.c = 0.7});
    const std::vector<double> official = cagrad_weights(g.gramian, 4, {.c = 0.7, .rescale_like_official_code = true});
    for (int t = 0; t < 4; ++t) EXPECT_NEAR(official[t], paper[t] / 1.49, 1e-14);
}

TEST(GramianSolvers, ImtlGDirectionHasEqualProjectionsOntoEveryUnitGradient) {
    for (const Gradients& g : gradient_sets()) {
        if (g.dim < g.tasks) continue;
        TRACE_SHAPE(g);
        const std::vector<double> alpha = imtl_g_weights(g.gramian, g.tasks);
        double sum = 0.0;
        for (double a : alpha) sum += a;
        EXPECT_NEAR(sum, 1.0, 1e-10);
        const std::vector<double> inner = times_gramian(g, alpha);
        const double first = inner[0] / std::sqrt(g.gramian[0]);
        EXPECT_GT(first, 0.0);
        for (int t = 1; t < g.tasks; ++t)
            EXPECT_NEAR(inner[t] / std::sqrt(g.gramian[t * g.tasks + t]), first, 1e-8 * std::abs(first)) << t;
    }
}

TEST(GramianSolvers, ImtlGRejectsAZeroGradientNamingTheTask) {
    const std::vector<double> gramian = {4.0, 0.0, 0.0, 0.0};
    try {
        imtl_g_weights(gramian, 2);
        FAIL() << "no error";
    } catch (const ladon::Error& e) {
        EXPECT_NE(std::string(e.what()).find("IMTL-G: task 1's gradient is zero"), std::string::npos) << e.what();
    }
}

// Column k of Aligned-MTL's balance transform B: the weights for preferences e_k.
std::vector<double> aligned_mtl_transform(const Gradients& g) {
    std::vector<double> transform(std::size_t(g.tasks) * g.tasks);
    for (int k = 0; k < g.tasks; ++k) {
        AlignedMtlOptions options{.preferences = std::vector<double>(g.tasks, 0.0)};
        options.preferences[k] = 1.0;
        const std::vector<double> column = aligned_mtl_weights(g.gramian, g.tasks, options);
        for (int t = 0; t < g.tasks; ++t) transform[t * g.tasks + k] = column[t];
    }
    return transform;
}

TEST(GramianSolvers, AlignedMtlBalancedGradientsAreOrthogonalAndOfEqualNorm) {
    int full_rank = 0;
    for (const Gradients& g : gradient_sets()) {
        TRACE_SHAPE(g);
        const int n = g.tasks;
        const std::vector<double> b = aligned_mtl_transform(g);
        // Gram matrix of the balanced gradients B J: M = B G B^T (B is symmetric).
        std::vector<double> m(std::size_t(n) * n, 0.0), m_squared(std::size_t(n) * n, 0.0);
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j)
                for (int k = 0; k < n; ++k)
                    for (int l = 0; l < n; ++l) m[i * n + j] += b[i * n + k] * g.gramian[k * n + l] * b[j * n + l];
        double trace = 0.0, trace_of_square = 0.0;
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j) {
                for (int k = 0; k < n; ++k) m_squared[i * n + j] += m[i * n + k] * m[k * n + j];
                trace_of_square += i == j ? m_squared[i * n + j] : 0.0;
                trace += i == j ? m[i * n + j] : 0.0;
            }
        // M = sigma_min^2 P, P the projector onto the kept eigenvectors: M^2 = sigma_min^2 M.
        const double sigma_squared = trace_of_square / trace;
        for (int k = 0; k < n * n; ++k)
            EXPECT_NEAR(m_squared[k], sigma_squared * m[k], 1e-9 * sigma_squared * sigma_squared);
        const int rank = int(std::lround(trace / sigma_squared));
        EXPECT_LE(rank, std::min(g.tasks, g.dim));
        if (rank < n) continue;
        ++full_rank;  // all kept: M = sigma_min^2 I
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j)
                EXPECT_NEAR(m[i * n + j], i == j ? sigma_squared : 0.0, 1e-9 * sigma_squared) << i << "," << j;
        const std::vector<double> ones_weights = aligned_mtl_weights(g.gramian, n);
        for (int t = 0; t < n; ++t) {
            double row_sum = 0.0;
            for (int k = 0; k < n; ++k) row_sum += b[t * n + k];
            EXPECT_NEAR(ones_weights[t], row_sum, 1e-12 * (1.0 + std::abs(row_sum)));
        }
    }
    EXPECT_GE(full_rank, 5);
}

TEST(GramianSolvers, AlignedMtlOnTwoTasksScalesToTheSmallerClosedFormEigenvalue) {
    const Gradients g = random_gradients(2, 5, 3, {1.0, 4.0});
    const double a = g.gramian[0], b = g.gramian[1], d = g.gramian[3];
    const double smaller = 0.5 * (a + d) - std::sqrt(0.25 * (a - d) * (a - d) + b * b);
    const std::vector<double> transform = aligned_mtl_transform(g);
    // |B g_1|^2 = (B G B)_11 = lambda_min.
    double squared_norm = 0.0;
    for (int k = 0; k < 2; ++k)
        for (int l = 0; l < 2; ++l) squared_norm += transform[k] * g.gramian[k * 2 + l] * transform[l];
    EXPECT_NEAR(squared_norm, smaller, 1e-10 * smaller);
}

TEST(GramianSolvers, UpgradDirectionConflictsWithNoTask) {
    for (const Gradients& g : gradient_sets()) {
        TRACE_SHAPE(g);
        const std::vector<double> w = upgrad_weights(g.gramian, g.tasks);
        for (int t = 0; t < g.tasks; ++t) {
            EXPECT_GE(times_gramian(g, w)[t], -1e-10 * largest_diagonal(g)) << "task " << t;
            EXPECT_GE(w[t], 1.0 / g.tasks - 1e-15) << "each projection keeps v_i >= e_i";
        }
    }
}

TEST(GramianSolvers, UpgradOnTwoConflictingTasksAveragesTheTwoProjections) {
    const std::vector<double> gramian = {4.0, -2.0, -2.0, 9.0};
    // Each gradient projected onto the other's normal plane: g1 + (2/9) g2 and g2 + (2/4) g1.
    const std::vector<double> w = upgrad_weights(gramian, 2);
    EXPECT_NEAR(w[0], (1.0 + 0.5) / 2.0, 1e-14);
    EXPECT_NEAR(w[1], (2.0 / 9.0 + 1.0) / 2.0, 1e-14);
    const std::vector<double> agreeing = {4.0, 1.0, 1.0, 9.0};
    EXPECT_EQ(upgrad_weights(agreeing, 2), std::vector<double>(2, 0.5));
}

TEST(GramianSolvers, GradNormMovesEachWeightAgainstItsGradientNormsDistanceToTheTarget) {
    // Equal loss ratios: the target is the mean weighted norm, (3 + 1) / 2 = 2 for norms 3 and 1.
    const std::vector<double> gramian = {9.0, 0.5, 0.5, 1.0}, weights = {1.0, 1.0}, losses = {2.0, 4.0};
    const std::vector<double> updated =
        gradnorm_weights(gramian, 2, weights, losses, losses, {.alpha = 1.5, .learning_rate = 0.1});
    // 1 - 0.1 * 3 and 1 + 0.1 * 1, then rescaled to sum to 2.
    EXPECT_NEAR(updated[0], 0.7 * 2.0 / 1.8, 1e-14);
    EXPECT_NEAR(updated[1], 1.1 * 2.0 / 1.8, 1e-14);
    // Task 1 trains slower (its loss fell less): with equal norms its target is higher, so it gains.
    const std::vector<double> equal_norms = {1.0, 0.0, 0.0, 1.0};
    const std::vector<double> initial = {1.0, 1.0}, current = {0.2, 0.8};
    const std::vector<double> rebalanced = gradnorm_weights(equal_norms, 2, weights, initial, current);
    EXPECT_LT(rebalanced[0], 1.0);
    EXPECT_GT(rebalanced[1], 1.0);
    EXPECT_NEAR(rebalanced[0] + rebalanced[1], 2.0, 1e-14);
}

TEST(GramianSolvers, GradNormRejectsInputsOfTheWrongLengthOrAZeroInitialLoss) {
    const std::vector<double> gramian = {1.0, 0.0, 0.0, 1.0}, two = {1.0, 1.0}, three = {1.0, 1.0, 1.0};
    EXPECT_THROW(gradnorm_weights(gramian, 2, three, two, two), ladon::Error);
    try {
        gradnorm_weights(gramian, 2, two, std::vector<double>{1.0, 0.0}, two);
        FAIL() << "no error";
    } catch (const ladon::Error& e) {
        EXPECT_NE(std::string(e.what()).find("GradNorm: task 1's initial loss is 0"), std::string::npos) << e.what();
    }
}

TEST(GramianSolvers, WithOneTaskEveryMethodGivesThePlainGradientOrItsDocumentedScaling) {
    const std::vector<double> gramian = {6.25};
    EXPECT_EQ(mgda_weights(gramian, 1), std::vector<double>{1.0});
    EXPECT_EQ(pcgrad_weights(gramian, 1), std::vector<double>{1.0});
    EXPECT_EQ(imtl_g_weights(gramian, 1), std::vector<double>{1.0});
    EXPECT_NEAR(aligned_mtl_weights(gramian, 1)[0], 1.0, 1e-15);
    EXPECT_EQ(upgrad_weights(gramian, 1), std::vector<double>{1.0});
    EXPECT_NEAR(cagrad_weights(gramian, 1, {.c = 0.4})[0], 1.4, 1e-15);
    EXPECT_NEAR(cagrad_weights(gramian, 1, {.c = 0.4, .rescale_like_official_code = true})[0], 1.4 / 1.16, 1e-15);
    const std::vector<double> weight = {0.3}, loss = {2.0};
    EXPECT_NEAR(gradnorm_weights(gramian, 1, weight, loss, loss)[0], 1.0, 1e-15);
}

struct NamedSolver {
    const char* name;
    std::function<void(std::span<const double>, int)> solve;
};

std::vector<NamedSolver> every_solver() {
    return {
        {"MGDA", [](auto g, int n) { mgda_weights(g, n); }},
        {"PCGrad", [](auto g, int n) { pcgrad_weights(g, n); }},
        {"CAGrad", [](auto g, int n) { cagrad_weights(g, n); }},
        {"IMTL-G", [](auto g, int n) { imtl_g_weights(g, n); }},
        {"Aligned-MTL", [](auto g, int n) { aligned_mtl_weights(g, n); }},
        {"UPGrad", [](auto g, int n) { upgrad_weights(g, n); }},
        {"GradNorm",
         [](auto g, int n) {
             const std::vector<double> ones(std::max(n, 0), 1.0);
             gradnorm_weights(g, n, ones, ones, ones);
         }},
    };
}

TEST(GramianSolvers, BadGramiansThrowAMessageNamingTheMethodAndWhatWasExpected) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    struct BadGramian {
        const char* what;
        std::vector<double> gramian;
        int tasks;
        const char* expected_text;
    };
    const std::vector<BadGramian> bad = {
        {"8 values for 3 tasks", std::vector<double>(8, 1.0), 3, "expected a square row-major 3x3 Gramian (9 values)"},
        {"asymmetric", {2.0, 1.0, 0.5, 2.0}, 2, "the Gramian is not symmetric: G[0][1] = 1"},
        {"NaN", {2.0, nan, nan, 2.0}, 2, "the Gramian has a non-finite entry G[0][1]"},
        {"negative diagonal", {2.0, 0.0, 0.0, -1.0}, 2, "diagonal entry G[1][1] = -1"},
        {"no tasks", {}, 0, "expected at least one task, got 0"},
    };
    for (const NamedSolver& solver : every_solver())
        for (const BadGramian& input : bad) {
            SCOPED_TRACE(std::string(solver.name) + ", " + input.what);
            try {
                solver.solve(input.gramian, input.tasks);
                ADD_FAILURE() << "no error";
            } catch (const ladon::Error& e) {
                const std::string message = e.what();
                EXPECT_EQ(message.rfind(std::string(solver.name) + ": ", 0), 0u) << message;
                EXPECT_NE(message.find(input.expected_text), std::string::npos) << message;
            }
        }
}

TEST(GramianSolvers, AFloatRoundedGramianIsAcceptedAsSymmetric) {
    const std::vector<double> rounded = {2.0, 1.0 + 1e-8, 1.0, 3.0};
    for (const NamedSolver& solver : every_solver()) EXPECT_NO_THROW(solver.solve(rounded, 2)) << solver.name;
}

// ---- the shared numerics ----

TEST(GramianNumerics, JacobiRecoversKnownEigenvaluesWithOrthonormalVectors) {
    // Q diag(5, 2, 0.5, 0) Q^T with Q a product of rotations.
    const int n = 4;
    const std::vector<double> known = {5.0, 2.0, 0.5, 0.0};
    std::vector<double> q(n * n, 0.0);
    for (int i = 0; i < n; ++i) q[i * n + i] = 1.0;
    for (auto [p, r, angle] : {std::tuple{0, 1, 0.3}, {1, 3, 1.1}, {0, 2, -0.7}, {2, 3, 0.4}}) {
        for (int k = 0; k < n; ++k) {
            const double x = q[k * n + p], y = q[k * n + r];
            q[k * n + p] = std::cos(angle) * x - std::sin(angle) * y;
            q[k * n + r] = std::sin(angle) * x + std::cos(angle) * y;
        }
    }
    std::vector<double> matrix(n * n, 0.0);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j)
            for (int k = 0; k < n; ++k) matrix[i * n + j] += q[i * n + k] * known[k] * q[j * n + k];
    const numerics::SymmetricEigen eigen = numerics::symmetric_eigen(matrix, n);
    for (int k = 0; k < n; ++k) EXPECT_NEAR(eigen.values[k], known[k], 1e-13) << k;
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            double inner = 0.0, rebuilt = 0.0;
            for (int k = 0; k < n; ++k) {
                inner += eigen.vectors[k * n + i] * eigen.vectors[k * n + j];
                rebuilt += eigen.vectors[i * n + k] * eigen.values[k] * eigen.vectors[j * n + k];
            }
            EXPECT_NEAR(inner, i == j ? 1.0 : 0.0, 1e-13);
            EXPECT_NEAR(rebuilt, matrix[i * n + j], 1e-13);
        }
}

TEST(GramianNumerics, LinearSolveHasASmallResidualAndRefusesASingularMatrix) {
    const std::vector<double> matrix = {0.0, 2.0, 1.0, 3.0, 1.0, 0.0, 1.0, 1.0, 4.0}, rhs = {1.0, 2.0, 3.0};
    const auto x = numerics::solve_linear_system(matrix, 3, rhs);
    ASSERT_TRUE(x.has_value());
    const std::vector<double> product = numerics::matrix_times_vector(matrix, 3, *x);
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(product[k], rhs[k], 1e-14);
    const std::vector<double> singular = {1.0, 2.0, 2.0, 4.0};
    EXPECT_FALSE(numerics::solve_linear_system(singular, 2, std::vector<double>{1.0, 1.0}).has_value());
}

TEST(GramianNumerics, SimplexProjectionIsTheClosestPointOfTheSimplex) {
    std::mt19937_64 engine(5);
    std::normal_distribution<double> normal;
    for (int trial = 0; trial < 200; ++trial) {
        std::vector<double> point(5);
        for (double& x : point) x = 2.0 * normal(engine);
        std::vector<double> projected = point;
        numerics::project_onto_simplex(projected);
        double sum = 0.0;
        for (double x : projected) {
            EXPECT_GE(x, 0.0);
            sum += x;
        }
        EXPECT_NEAR(sum, 1.0, 1e-12);
        // Optimality: (point - p) . (vertex - p) <= 0 for every vertex of the simplex.
        std::vector<double> residual(5);
        for (int k = 0; k < 5; ++k) residual[k] = point[k] - projected[k];
        for (int k = 0; k < 5; ++k) EXPECT_LE(residual[k] - numerics::dot(residual, projected), 1e-12);
    }
}

}  // namespace
}  // namespace ladon::engine
