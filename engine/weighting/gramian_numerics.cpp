#include "engine/weighting/gramian_numerics.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <utility>

namespace ladon::engine::gramian_numerics {

double dot(std::span<const double> a, std::span<const double> b) {
    return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

std::vector<double> matrix_times_vector(std::span<const double> matrix, int n, std::span<const double> vector) {
    std::vector<double> product(n);
    for (int row = 0; row < n; ++row) product[row] = dot(matrix.subspan(std::size_t(row) * n, n), vector);
    return product;
}

double quadratic_form(std::span<const double> matrix, int n, std::span<const double> vector) {
    return dot(vector, matrix_times_vector(matrix, n, vector));
}

namespace {

double off_diagonal_squares(const std::vector<double>& a, int n) {
    double sum = 0.0;
    for (int p = 0; p < n; ++p)
        for (int q = 0; q < n; ++q)
            if (p != q) sum += a[p * n + q] * a[p * n + q];
    return sum;
}

// A <- R^T A R and V <- V R for the rotation R in the (p, q) plane that zeroes A_pq.
void jacobi_rotate(std::vector<double>& a, std::vector<double>& v, int n, int p, int q) {
    const double cot_two_angle = (a[q * n + q] - a[p * n + p]) / (2.0 * a[p * n + q]);
    const double tangent =
        std::copysign(1.0, cot_two_angle) / (std::abs(cot_two_angle) + std::sqrt(cot_two_angle * cot_two_angle + 1.0));
    const double cosine = 1.0 / std::sqrt(tangent * tangent + 1.0), sine = tangent * cosine;
    auto rotate = [&](double& x, double& y) {
        const double old_x = x;
        x = cosine * old_x - sine * y;
        y = sine * old_x + cosine * y;
    };
    for (int k = 0; k < n; ++k) rotate(a[k * n + p], a[k * n + q]);
    for (int k = 0; k < n; ++k) rotate(a[p * n + k], a[q * n + k]);
    for (int k = 0; k < n; ++k) rotate(v[k * n + p], v[k * n + q]);
    a[p * n + q] = a[q * n + p] = 0.0;
}

}  // namespace

SymmetricEigen symmetric_eigen(std::span<const double> matrix, int n) {
    std::vector<double> a(matrix.begin(), matrix.end()), v(std::size_t(n) * n, 0.0);
    for (int i = 0; i < n; ++i) v[i * n + i] = 1.0;
    const double squares = std::inner_product(a.begin(), a.end(), a.begin(), 0.0);
    const double negligible = std::numeric_limits<double>::epsilon() * std::numeric_limits<double>::epsilon() * squares;
    // Quadratic convergence: a handful of sweeps suffices; the cap only guards NaN-free oddities.
    for (int sweep = 0; sweep < 64 && off_diagonal_squares(a, n) > negligible; ++sweep)
        for (int p = 0; p < n; ++p)
            for (int q = p + 1; q < n; ++q)
                if (a[p * n + q] != 0.0) jacobi_rotate(a, v, n, p, q);

    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int x, int y) { return a[x * n + x] > a[y * n + y]; });
    SymmetricEigen eigen{std::vector<double>(n), std::vector<double>(std::size_t(n) * n)};
    for (int k = 0; k < n; ++k) {
        eigen.values[k] = a[order[k] * n + order[k]];
        for (int row = 0; row < n; ++row) eigen.vectors[row * n + k] = v[row * n + order[k]];
    }
    return eigen;
}

std::optional<std::vector<double>> solve_linear_system(std::span<const double> matrix, int n,
                                                       std::span<const double> rhs, double relative_pivot_tolerance) {
    std::vector<double> a(matrix.begin(), matrix.end()), x(rhs.begin(), rhs.end());
    double largest = 0.0;
    for (double entry : a) largest = std::max(largest, std::abs(entry));
    for (int column = 0; column < n; ++column) {
        int pivot = column;
        for (int row = column + 1; row < n; ++row)
            if (std::abs(a[row * n + column]) > std::abs(a[pivot * n + column])) pivot = row;
        if (!(std::abs(a[pivot * n + column]) > relative_pivot_tolerance * largest)) return std::nullopt;
        for (int k = 0; k < n; ++k) std::swap(a[column * n + k], a[pivot * n + k]);
        std::swap(x[column], x[pivot]);
        for (int row = column + 1; row < n; ++row) {
            const double factor = a[row * n + column] / a[column * n + column];
            for (int k = column; k < n; ++k) a[row * n + k] -= factor * a[column * n + k];
            x[row] -= factor * x[column];
        }
    }
    for (int row = n - 1; row >= 0; --row) {
        for (int k = row + 1; k < n; ++k) x[row] -= a[row * n + k] * x[k];
        x[row] /= a[row * n + row];
    }
    return x;
}

void project_onto_simplex(std::span<double> point) {
    std::vector<double> sorted(point.begin(), point.end());
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    double prefix = 0.0, shift = 0.0;
    for (std::size_t k = 0; k < sorted.size(); ++k) {
        prefix += sorted[k];
        const double candidate = (prefix - 1.0) / double(k + 1);
        if (sorted[k] - candidate > 0.0) shift = candidate;
    }
    for (double& x : point) x = std::max(x - shift, 0.0);
}

namespace {

double frank_wolfe_gap(std::span<const double> w, std::span<const double> gradient) {
    return dot(gradient, w) - *std::min_element(gradient.begin(), gradient.end());
}

}  // namespace

namespace {

// One projected gradient step from w, its length found by backtracking until
// the quadratic model with curvature 1/step bounds f from above; the step is
// halved on each failure and doubled after a success, so it tracks the local
// curvature. False when no step makes progress (the rounding floor).
bool projected_gradient_step(const SimplexObjective& objective, std::vector<double>& w, double& value,
                             std::span<const double> gradient, double& step) {
    std::vector<double> candidate(w.size());
    for (int halving = 0; halving < 2100; ++halving, step *= 0.5) {  // 2^-2100: below any double step
        for (std::size_t k = 0; k < w.size(); ++k) candidate[k] = w[k] - step * gradient[k];
        project_onto_simplex(candidate);
        double model = value, moved = 0.0;
        for (std::size_t k = 0; k < w.size(); ++k) {
            model += gradient[k] * (candidate[k] - w[k]);
            moved += (candidate[k] - w[k]) * (candidate[k] - w[k]);
        }
        const double candidate_value = objective.value(candidate);
        if (candidate_value > model + moved / (2.0 * step)) continue;
        if (candidate_value > value || moved == 0.0) return false;
        w.swap(candidate);
        value = candidate_value;
        step *= 2.0;
        return true;
    }
    return false;
}

}  // namespace

std::vector<double> minimize_on_simplex(const SimplexObjective& objective, std::vector<double> start,
                                        const SimplexSolverLimits& limits) {
    std::vector<double> w = std::move(start);
    project_onto_simplex(w);
    double value = objective.value(w), step = 1.0;
    for (int iteration = 0; iteration < limits.max_iterations; ++iteration) {
        const std::vector<double> gradient = objective.gradient(w);
        if (frank_wolfe_gap(w, gradient) <= limits.gap_tolerance) break;
        if (!projected_gradient_step(objective, w, value, gradient, step)) break;
    }
    return w;
}

namespace {

// True when v satisfies the KKT conditions of min v^T G v over v >= lower:
// G v >= 0, and G v = 0 where v is above its bound.
bool bounded_quadratic_kkt_holds(std::span<const double> gradient, std::span<const double> v,
                                 std::span<const double> lower, double tolerance) {
    for (std::size_t k = 0; k < v.size(); ++k) {
        if (gradient[k] < -tolerance) return false;
        if (v[k] > lower[k] && gradient[k] > tolerance) return false;
    }
    return true;
}

// The exact minimiser when the free set (v_k > lower_k) is right; nullopt if
// G_FF is singular or the solution leaves the feasible set.
std::optional<std::vector<double>> solve_on_free_set(std::span<const double> gramian, int n, std::span<const double> v,
                                                     std::span<const double> lower) {
    std::vector<int> free;
    for (int k = 0; k < n; ++k)
        if (v[k] > lower[k]) free.push_back(k);
    const int m = int(free.size());
    if (m == 0) return std::nullopt;
    std::vector<double> block(std::size_t(m) * m), rhs(m);
    for (int r = 0; r < m; ++r) {
        for (int c = 0; c < m; ++c) block[r * m + c] = gramian[free[r] * n + free[c]];
        for (int k = 0; k < n; ++k)
            if (!(v[k] > lower[k])) rhs[r] -= gramian[free[r] * n + k] * lower[k];
    }
    const auto solution = solve_linear_system(block, m, rhs);
    if (!solution) return std::nullopt;
    std::vector<double> exact(lower.begin(), lower.end());
    for (int r = 0; r < m; ++r) {
        if ((*solution)[r] < lower[free[r]]) return std::nullopt;
        exact[free[r]] = (*solution)[r];
    }
    return exact;
}

}  // namespace

std::vector<double> minimize_quadratic_above(std::span<const double> gramian, int n, std::span<const double> lower,
                                             const BoundedQuadraticLimits& limits) {
    std::vector<double> v(lower.begin(), lower.end()), gradient = matrix_times_vector(gramian, n, v);
    for (int sweep = 0; sweep < limits.max_sweeps; ++sweep) {
        if (bounded_quadratic_kkt_holds(gradient, v, lower, limits.kkt_tolerance)) break;
        // Exact minimisation along each coordinate in turn, kept above its bound.
        for (int k = 0; k < n; ++k) {
            const double curvature = gramian[k * n + k];
            if (!(curvature > 0.0)) continue;  // a zero gradient: v_k changes nothing
            const double moved = std::max(lower[k], v[k] - gradient[k] / curvature) - v[k];
            if (moved == 0.0) continue;
            v[k] += moved;
            for (int row = 0; row < n; ++row) gradient[row] += moved * gramian[row * n + k];
        }
        if (const auto exact = solve_on_free_set(gramian, n, v, lower)) {
            const std::vector<double> exact_gradient = matrix_times_vector(gramian, n, *exact);
            if (bounded_quadratic_kkt_holds(exact_gradient, *exact, lower, limits.kkt_tolerance)) return *exact;
        }
    }
    return v;
}

}  // namespace ladon::engine::gramian_numerics
