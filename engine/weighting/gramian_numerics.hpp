#pragma once
// The small dense numerics the Gramian solvers share (gramian.hpp): matrices
// are row-major n x n in double, n is a task count (2..~16), so every routine
// here is a plain O(n^3) loop with no allocation worth avoiding.
#include <functional>
#include <optional>
#include <span>
#include <vector>

namespace ladon::engine::gramian_numerics {

double dot(std::span<const double> a, std::span<const double> b);
std::vector<double> matrix_times_vector(std::span<const double> matrix, int n, std::span<const double> vector);
double quadratic_form(std::span<const double> matrix, int n, std::span<const double> vector);  // v^T M v

// Eigenvalues in descending order; eigenvector k is column k of `vectors`.
struct SymmetricEigen {
    std::vector<double> values;
    std::vector<double> vectors;  // n x n, row-major
};
// Cyclic Jacobi rotations until the off-diagonal part is below rounding.
SymmetricEigen symmetric_eigen(std::span<const double> matrix, int n);

// x with M x = b by Gaussian elimination with partial pivoting; nullopt when a
// pivot is below relative_pivot_tolerance times the largest entry of M.
std::optional<std::vector<double>> solve_linear_system(std::span<const double> matrix, int n,
                                                       std::span<const double> rhs,
                                                       double relative_pivot_tolerance = 1e-13);

// Euclidean projection onto {w >= 0, sum w = 1} (sort-based, Duchi et al. 2008).
void project_onto_simplex(std::span<double> point);

// A convex function on the simplex: its value and gradient at w.
struct SimplexObjective {
    std::function<double(std::span<const double>)> value;
    std::function<std::vector<double>(std::span<const double>)> gradient;
};
struct SimplexSolverLimits {
    int max_iterations = 100000;
    double gap_tolerance = 1e-14;  // on the Frank-Wolfe gap, absolute: the caller scales it
};
// Projected gradient descent with a backtracking step from `start` until the
// Frank-Wolfe gap grad.w - min_i grad_i (an upper bound on f(w) - f*) is below
// the tolerance or the iterations run out.
std::vector<double> minimize_on_simplex(const SimplexObjective& objective, std::vector<double> start,
                                        const SimplexSolverLimits& limits);

// argmin over v >= lower of v^T G v, G positive semidefinite: projected
// Gauss-Seidel sweeps (exact minimisation along one coordinate at a time)
// until the free set is right; after each sweep G_FF v_F = -G_FA lower_A
// gives the exact point, accepted once its KKT conditions hold to kkt_tolerance (an absolute
// bound on -(Gv)_i, and on |(Gv)_i| for free i).
struct BoundedQuadraticLimits {
    int max_sweeps = 100000;
    double kkt_tolerance = 1e-12;
};
std::vector<double> minimize_quadratic_above(std::span<const double> gramian, int n, std::span<const double> lower,
                                             const BoundedQuadraticLimits& limits);

}  // namespace ladon::engine::gramian_numerics
