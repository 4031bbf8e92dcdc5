// The Gramian check and the solvers that optimise over the simplex or a cone:
// MGDA, CAGrad, UPGrad. The closed-form ones are in gramian_closed_form.cpp.
#include "engine/weighting/gramian.hpp"

#include <algorithm>
#include <cmath>
#include "ladon/error.hpp"
#include <string>

#include "engine/weighting/gramian_numerics.hpp"

namespace ladon::engine {
namespace {

namespace numerics = gramian_numerics;

[[noreturn]] void fail(const char* method, const std::string& what) {
    throw ladon::Error(std::string(method) + ": " + what);
}

std::string entry_name(int row, int column) { return "G[" + std::to_string(row) + "][" + std::to_string(column) + "]"; }

double largest_diagonal(std::span<const double> gramian, int tasks) {
    double largest = 0.0;
    for (int t = 0; t < tasks; ++t) largest = std::max(largest, gramian[t * tasks + t]);
    return largest;
}

}  // namespace

std::vector<double> checked_gramian(const char* method, std::span<const double> gramian, int tasks) {
    if (tasks < 1) fail(method, "expected at least one task, got " + std::to_string(tasks));
    const std::size_t expected = std::size_t(tasks) * std::size_t(tasks);
    if (gramian.size() != expected)
        fail(method, "expected a square row-major " + std::to_string(tasks) + "x" + std::to_string(tasks) +
                         " Gramian (" + std::to_string(expected) + " values) for " + std::to_string(tasks) +
                         " tasks, got " + std::to_string(gramian.size()) + " values");
    for (int row = 0; row < tasks; ++row)
        for (int column = 0; column < tasks; ++column)
            if (!std::isfinite(gramian[row * tasks + column]))
                fail(method, "the Gramian has a non-finite entry " + entry_name(row, column) + " = " +
                                 std::to_string(gramian[row * tasks + column]) + "; expected finite values");
    for (int t = 0; t < tasks; ++t)
        if (gramian[t * tasks + t] < 0.0)
            fail(method, "the Gramian's diagonal entry " + entry_name(t, t) + " = " +
                             std::to_string(gramian[t * tasks + t]) + " is negative; expected squared gradient norms");
    std::vector<double> symmetric(gramian.begin(), gramian.end());
    for (int row = 0; row < tasks; ++row)
        for (int column = row + 1; column < tasks; ++column) {
            const double upper = gramian[row * tasks + column], lower = gramian[column * tasks + row];
            const double allowed = 1e-6 * std::sqrt(gramian[row * tasks + row] * gramian[column * tasks + column]);
            if (!(std::abs(upper - lower) <= allowed))
                fail(method, "the Gramian is not symmetric: " + entry_name(row, column) + " = " +
                                 std::to_string(upper) + " but " + entry_name(column, row) + " = " +
                                 std::to_string(lower));
            symmetric[row * tasks + column] = symmetric[column * tasks + row] = 0.5 * (upper + lower);
        }
    return symmetric;
}

// ---- MGDA ----

namespace {

// One Frank-Wolfe step towards the best vertex, or an away step from the
// worst vertex in use, whichever promises more; exact line search along it.
// Returns false once w is optimal to `tolerance`.
bool mgda_step(std::span<const double> gramian, int tasks, std::vector<double>& w, double tolerance) {
    const std::vector<double> gradient = numerics::matrix_times_vector(gramian, tasks, w);  // half of d(w^T G w)/dw
    const double value = numerics::dot(w, gradient);
    const int toward = int(std::min_element(gradient.begin(), gradient.end()) - gradient.begin());
    int away = toward;
    for (int t = 0; t < tasks; ++t)
        if (w[t] > 0.0 && gradient[t] > gradient[away]) away = t;
    const double toward_gain = value - gradient[toward], away_gain = gradient[away] - value;
    if (toward_gain <= tolerance) return false;

    std::vector<double> direction(w.size());
    double max_step = 1.0;
    if (toward_gain >= away_gain) {
        for (int t = 0; t < tasks; ++t) direction[t] = (t == toward ? 1.0 : 0.0) - w[t];
    } else {
        for (int t = 0; t < tasks; ++t) direction[t] = w[t] - (t == away ? 1.0 : 0.0);
        max_step = w[away] / (1.0 - w[away]);
    }
    // The quadratic along the segment, (w + s d)^T G (w + s d), is least at s = -d.Gw / d^T G d.
    const double slope = numerics::dot(direction, gradient);
    const double curvature = numerics::quadratic_form(gramian, tasks, direction);
    const double step = curvature > 0.0 ? std::clamp(-slope / curvature, 0.0, max_step) : max_step;
    if (step == 0.0) return false;
    for (int t = 0; t < tasks; ++t) w[t] = std::max(w[t] + step * direction[t], 0.0);
    if (toward_gain < away_gain && step == max_step) w[away] = 0.0;  // a drop step leaves the face exactly
    double sum = 0.0;
    for (double x : w) sum += x;
    for (double& x : w) x /= sum;
    return true;
}

}  // namespace

std::vector<double> mgda_weights(std::span<const double> gramian, int tasks, const MgdaOptions& options) {
    const std::vector<double> g = checked_gramian("MGDA", gramian, tasks);
    std::vector<double> w(tasks, 1.0 / tasks);
    const double tolerance = options.relative_tolerance * largest_diagonal(g, tasks);
    for (int iteration = 0; iteration < options.max_iterations; ++iteration)
        if (!mgda_step(g, tasks, w, tolerance)) break;
    return w;
}

// ---- CAGrad ----

std::vector<double> cagrad_weights(std::span<const double> gramian, int tasks, const CagradOptions& options) {
    const std::vector<double> g = checked_gramian("CAGrad", gramian, tasks);
    if (!(options.c >= 0.0) || !std::isfinite(options.c))
        fail("CAGrad", "expected c >= 0, got " + std::to_string(options.c));
    const std::vector<double> uniform(tasks, 1.0 / tasks);
    const std::vector<double> gradient_dot_mean = numerics::matrix_times_vector(g, tasks, uniform);  // g_t.g0
    const double mean_norm = std::sqrt(std::max(numerics::dot(uniform, gradient_dot_mean), 0.0));
    const double radius = options.c * mean_norm;  // sqrt(phi)

    numerics::SimplexObjective dual;
    dual.value = [&](std::span<const double> w) {
        return numerics::dot(w, gradient_dot_mean) +
               radius * std::sqrt(std::max(numerics::quadratic_form(g, tasks, w), 0.0));
    };
    dual.gradient = [&](std::span<const double> w) {
        std::vector<double> gradient = numerics::matrix_times_vector(g, tasks, w);
        const double norm = std::sqrt(std::max(numerics::dot(w, gradient), 0.0));
        for (int t = 0; t < tasks; ++t)
            gradient[t] = gradient_dot_mean[t] + (norm > 0.0 ? radius * gradient[t] / norm : 0.0);
        return gradient;
    };
    const numerics::SimplexSolverLimits limits{options.max_iterations,
                                               options.relative_tolerance * largest_diagonal(g, tasks)};
    const std::vector<double> w = numerics::minimize_on_simplex(dual, uniform, limits);

    // |g_w| = 0 (g0 = 0, or c >= 1 with 0 in the hull): the paper's direction is undefined; g0 it is.
    const double combined_norm = std::sqrt(std::max(numerics::quadratic_form(g, tasks, w), 0.0));
    const double scale = combined_norm > 0.0 ? radius / combined_norm : 0.0;
    const double rescale = options.rescale_like_official_code ? 1.0 / (1.0 + options.c * options.c) : 1.0;
    std::vector<double> weights(tasks);
    for (int t = 0; t < tasks; ++t) weights[t] = (uniform[t] + scale * w[t]) * rescale;
    return weights;
}

// ---- UPGrad ----

std::vector<double> upgrad_weights(std::span<const double> gramian, int tasks, const UpgradOptions& options) {
    const std::vector<double> g = checked_gramian("UPGrad", gramian, tasks);
    const numerics::BoundedQuadraticLimits limits{options.max_sweeps,
                                                  options.relative_tolerance * largest_diagonal(g, tasks)};
    std::vector<double> weights(tasks, 0.0), lower(tasks, 0.0);
    for (int i = 0; i < tasks; ++i) {
        std::fill(lower.begin(), lower.end(), 0.0);
        lower[i] = 1.0;
        const std::vector<double> projection = numerics::minimize_quadratic_above(g, tasks, lower, limits);
        for (int t = 0; t < tasks; ++t) weights[t] += projection[t] / tasks;
    }
    return weights;
}

}  // namespace ladon::engine
