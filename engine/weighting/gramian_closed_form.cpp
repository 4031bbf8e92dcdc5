// The Gramian solvers with a closed form (no iteration to a tolerance):
// PCGrad, IMTL-G, Aligned-MTL, GradNorm. MGDA, CAGrad, UPGrad: gramian.cpp.
#include <cmath>
#include "ladon/error.hpp"
#include <string>
#include <utility>

#include "engine/weighting/gramian.hpp"
#include "engine/weighting/gramian_numerics.hpp"

namespace ladon::engine {
namespace {

namespace numerics = gramian_numerics;

ladon::Error method_error(const char* method, const std::string& what) {
    return ladon::Error(std::string(method) + ": " + what);
}

// splitmix64 (Steele, Lea and Flood 2014): PCGrad's documented order stream.
class SplitMix64 {
public:
    explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

private:
    std::uint64_t state_;
};

}  // namespace

// ---- PCGrad ----

std::vector<std::vector<int>> pcgrad_task_orders(int tasks, std::uint64_t seed) {
    SplitMix64 random(seed);
    std::vector<std::vector<int>> orders(tasks);
    for (int i = 0; i < tasks; ++i) {
        for (int j = 0; j < tasks; ++j)
            if (j != i) orders[i].push_back(j);
        for (int k = int(orders[i].size()) - 1; k > 0; --k)
            std::swap(orders[i][k], orders[i][random.next() % std::uint64_t(k + 1)]);
    }
    return orders;
}

std::vector<double> pcgrad_projected_gradients(std::span<const double> gramian, int tasks,
                                               const PcgradOptions& options) {
    const std::vector<double> g = checked_gramian("PCGrad", gramian, tasks);
    const std::vector<std::vector<int>> orders = pcgrad_task_orders(tasks, options.seed);
    std::vector<double> coefficients(std::size_t(tasks) * tasks, 0.0);
    for (int i = 0; i < tasks; ++i) {
        const std::span<double> projected(coefficients.data() + std::size_t(i) * tasks, tasks);
        projected[i] = 1.0;
        for (int j : orders[i]) {
            // (sum_k c_k g_k) . g_j = sum_k c_k G_kj; G_jj > 0 whenever that is negative.
            const double inner =
                numerics::dot(projected, std::span<const double>(g).subspan(std::size_t(j) * tasks, tasks));
            if (inner < 0.0) projected[j] -= inner / g[j * tasks + j];
        }
    }
    return coefficients;
}

std::vector<double> pcgrad_weights(std::span<const double> gramian, int tasks, const PcgradOptions& options) {
    const std::vector<double> coefficients = pcgrad_projected_gradients(gramian, tasks, options);
    std::vector<double> weights(tasks, 0.0);
    for (int i = 0; i < tasks; ++i)
        for (int k = 0; k < tasks; ++k) weights[k] += coefficients[i * tasks + k];
    return weights;
}

// ---- IMTL-G ----

std::vector<double> imtl_g_weights(std::span<const double> gramian, int tasks) {
    const std::vector<double> g = checked_gramian("IMTL-G", gramian, tasks);
    std::vector<double> norms(tasks);
    for (int t = 0; t < tasks; ++t) {
        norms[t] = std::sqrt(g[t * tasks + t]);
        if (!(norms[t] > 0.0))
            throw method_error("IMTL-G", "task " + std::to_string(t) + "'s gradient is zero (G[" + std::to_string(t) +
                                             "][" + std::to_string(t) +
                                             "] = 0); expected non-zero gradients, whose unit vectors IMTL-G uses");
    }
    if (tasks == 1) return {1.0};
    auto along_unit = [&](int i, int j) { return g[i * tasks + j] / norms[j]; };  // g_i . u_j
    const int rest = tasks - 1;
    // Row k of system_transposed and rhs: (D U^T)^T alpha_rest = (g_1 U^T)^T, tasks 2..T as 1..rest.
    std::vector<double> system_transposed(std::size_t(rest) * rest), rhs(rest);
    for (int k = 1; k < tasks; ++k) {
        rhs[k - 1] = along_unit(0, 0) - along_unit(0, k);
        for (int j = 1; j < tasks; ++j)  // (D U^T)_jk = (g_1 - g_j).(u_1 - u_k)
            system_transposed[(k - 1) * rest + (j - 1)] =
                along_unit(0, 0) - along_unit(j, 0) - along_unit(0, k) + along_unit(j, k);
    }
    const auto alpha_rest = numerics::solve_linear_system(system_transposed, rest, rhs);
    if (!alpha_rest)
        throw method_error("IMTL-G",
                           "its linear system (D U^T) is singular, as when two tasks' gradients are parallel; "
                           "expected linearly independent task gradients");
    std::vector<double> weights(tasks);
    weights[0] = 1.0;
    for (int k = 1; k < tasks; ++k) {
        weights[k] = (*alpha_rest)[k - 1];
        weights[0] -= weights[k];
    }
    return weights;
}

// ---- Aligned-MTL ----

std::vector<double> aligned_mtl_weights(std::span<const double> gramian, int tasks, const AlignedMtlOptions& options) {
    const std::vector<double> g = checked_gramian("Aligned-MTL", gramian, tasks);
    std::vector<double> preferences = options.preferences;
    if (preferences.empty()) preferences.assign(tasks, 1.0);
    if (int(preferences.size()) != tasks)
        throw method_error("Aligned-MTL", "expected " + std::to_string(tasks) +
                                              " task preferences (one per task), got " +
                                              std::to_string(preferences.size()));
    const numerics::SymmetricEigen eigen = numerics::symmetric_eigen(g, tasks);
    std::vector<double> weights(tasks, 0.0);
    if (!(eigen.values[0] > 0.0)) return weights;  // no gradient at all
    const double negligible = options.relative_rank_tolerance * tasks * eigen.values[0];
    int rank = 0;
    while (rank < tasks && eigen.values[rank] > negligible) ++rank;
    const double smallest_singular_value = std::sqrt(eigen.values[rank - 1]);
    // w = sigma_min * sum_k v_k (v_k . p) / sqrt(lambda_k) over the kept eigenpairs.
    for (int k = 0; k < rank; ++k) {
        double along = 0.0;
        for (int t = 0; t < tasks; ++t) along += eigen.vectors[t * tasks + k] * preferences[t];
        const double scale = smallest_singular_value * along / std::sqrt(eigen.values[k]);
        for (int t = 0; t < tasks; ++t) weights[t] += scale * eigen.vectors[t * tasks + k];
    }
    return weights;
}

// ---- GradNorm ----

namespace {

void check_gradnorm_inputs(int tasks, std::span<const double> weights, std::span<const double> initial_losses,
                           std::span<const double> losses, const GradNormOptions& options) {
    auto check_size = [&](std::span<const double> values, const char* what) {
        if (values.size() != std::size_t(tasks))
            throw method_error("GradNorm", "expected " + std::to_string(tasks) + " " + what + " (one per task), got " +
                                               std::to_string(values.size()));
    };
    check_size(weights, "weights");
    check_size(initial_losses, "initial losses");
    check_size(losses, "losses");
    for (int t = 0; t < tasks; ++t) {
        if (!std::isfinite(weights[t]))
            throw method_error("GradNorm", "task " + std::to_string(t) + "'s weight is not finite");
        if (!(initial_losses[t] > 0.0) || !std::isfinite(initial_losses[t]))
            throw method_error("GradNorm", "task " + std::to_string(t) + "'s initial loss is " +
                                               std::to_string(initial_losses[t]) + "; expected a finite value > 0");
        if (!(losses[t] >= 0.0) || !std::isfinite(losses[t]))
            throw method_error("GradNorm", "task " + std::to_string(t) + "'s loss is " + std::to_string(losses[t]) +
                                               "; expected a finite value >= 0");
    }
    if (!std::isfinite(options.alpha) || !(options.learning_rate > 0.0) || !std::isfinite(options.learning_rate))
        throw method_error("GradNorm", "expected a finite alpha and a finite learning rate > 0");
}

}  // namespace

std::vector<double> gradnorm_weights(std::span<const double> gramian, int tasks, std::span<const double> weights,
                                     std::span<const double> initial_losses, std::span<const double> losses,
                                     const GradNormOptions& options) {
    const std::vector<double> g = checked_gramian("GradNorm", gramian, tasks);
    check_gradnorm_inputs(tasks, weights, initial_losses, losses, options);
    std::vector<double> norms(tasks), weighted_norms(tasks), ratios(tasks);
    double mean_weighted_norm = 0.0, mean_ratio = 0.0;
    for (int t = 0; t < tasks; ++t) {
        norms[t] = std::sqrt(g[t * tasks + t]);
        weighted_norms[t] = weights[t] * norms[t];
        ratios[t] = losses[t] / initial_losses[t];  // the inverse training rate L~_t
        mean_weighted_norm += weighted_norms[t] / tasks;
        mean_ratio += ratios[t] / tasks;
    }
    std::vector<double> updated(tasks);
    double sum = 0.0;
    for (int t = 0; t < tasks; ++t) {
        const double relative_rate = mean_ratio > 0.0 ? ratios[t] / mean_ratio : 1.0;  // r_t; all losses 0: 1
        const double target = mean_weighted_norm * std::pow(relative_rate, options.alpha);
        const double difference = weighted_norms[t] - target;
        const double sign = difference > 0.0 ? 1.0 : (difference < 0.0 ? -1.0 : 0.0);
        updated[t] = weights[t] - options.learning_rate * sign * norms[t];
        sum += updated[t];
    }
    if (!(sum > 0.0))
        throw method_error("GradNorm", "the updated weights sum to " + std::to_string(sum) +
                                           "; expected a positive sum to renormalise to " + std::to_string(tasks) +
                                           " (lower the learning rate)");
    for (double& w : updated) w *= tasks / sum;
    return updated;
}

}  // namespace ladon::engine
