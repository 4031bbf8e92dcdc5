#pragma once
// Gradient-based task weighting (issue 15) as solvers over the Gramian
// G = J J^T of the per-task gradients: row t of J is task t's gradient (at the
// trunk output or over the shared parameters), G is row-major T x T in double.
// Each solver returns weights w; training then backpropagates sum_t w_t dL_t,
// so the update direction is J^T w. None needs J itself.
//
// Every solver first checks G: `tasks` >= 1, tasks * tasks finite values,
// diagonal >= 0, symmetric to 1e-6 of sqrt(G_ii G_jj) (a float-accumulated
// J J^T is not exactly symmetric; the solvers use (G + G^T) / 2). A bad G, or
// a bad option, is a ladon::Error whose message starts with the
// method's name ("MGDA: ...") and says what was expected.
//
// With one task each returns {1}, except CAGrad: {1 + c} ({(1 + c) / (1 + c^2)}
// rescaled), and GradNorm, which returns the weight it was given renormalised
// to 1. Tests: tests/cpu/test_gramian_*.cpp against tests/mtl/gramian_reference.py.
#include <cstdint>
#include <span>
#include <vector>

namespace ladon::engine {

// G checked as above and symmetrised; `method` opens every error message.
std::vector<double> checked_gramian(const char* method, std::span<const double> gramian, int tasks);

// MGDA (Sener & Koltun, NeurIPS 2018): the min-norm point of the convex hull
// of the gradients, w on the simplex minimising w^T G w. Frank-Wolfe from the
// uniform w with the paper's exact line search (its Algorithm 1, the min-norm
// point of a segment), plus away steps, which let a task's weight reach 0 in
// one step instead of zig-zagging towards it. Weights sum to 1.
struct MgdaOptions {
    int max_iterations = 100000;
    // Stop when w^T G w - min_t (G w)_t (half the Frank-Wolfe gap) is below
    // this times max_t G_tt.
    double relative_tolerance = 1e-15;
};
std::vector<double> mgda_weights(std::span<const double> gramian, int tasks, const MgdaOptions& options = {});

// PCGrad (Yu et al., NeurIPS 2020): each task's gradient, projected onto the
// normal plane of every other task's (original) gradient it conflicts with,
// in a random order of the other tasks; the direction is the sum of the
// projected gradients. The order is reproducible: one splitmix64 stream
// started at `seed` draws, for task 0, 1, ... in turn, a Fisher-Yates shuffle
// (k from the last index down to 1, swap k with next() % (k + 1)) of the other
// tasks in increasing order.
struct PcgradOptions {
    std::uint64_t seed = 0;
};
std::vector<std::vector<int>> pcgrad_task_orders(int tasks, std::uint64_t seed);
// Row i: task i's projected gradient as coefficients over the original ones
// (T x T, row-major). The weights are the column sums.
std::vector<double> pcgrad_projected_gradients(std::span<const double> gramian, int tasks,
                                               const PcgradOptions& options = {});
std::vector<double> pcgrad_weights(std::span<const double> gramian, int tasks, const PcgradOptions& options = {});

// CAGrad (Liu et al., NeurIPS 2021): with g0 the mean gradient and
// phi = c^2 |g0|^2, w minimises g_w.g0 + sqrt(phi) |g_w| on the simplex
// (projected gradient descent), and the direction is
// g0 + sqrt(phi) / |g_w| * g_w, i.e. weights 1/T + sqrt(phi) / |g_w| * w.
// The paper's direction by default; the official code divides it by 1 + c^2.
struct CagradOptions {
    double c = 0.4;
    bool rescale_like_official_code = false;
    int max_iterations = 100000;
    double relative_tolerance = 1e-15;  // on the dual's Frank-Wolfe gap, times max_t G_tt
};
std::vector<double> cagrad_weights(std::span<const double> gramian, int tasks, const CagradOptions& options = {});

// IMTL-G (Liu et al., ICLR 2021): the direction J^T alpha with sum alpha = 1
// whose projections onto every task's unit gradient u_t are equal. With
// D_k = g_1 - g_k and U_k = u_1 - u_k (k = 2..T), alpha_2..T = g_1 U^T (D U^T)^-1
// and alpha_1 = 1 - sum; through G, g_i.u_j = G_ij / sqrt(G_jj). A zero
// gradient, or a singular D U^T (two parallel gradients, say; independent
// gradients never give one), is a ladon::Error.
std::vector<double> imtl_g_weights(std::span<const double> gramian, int tasks);

// Aligned-MTL (Senushkin et al., CVPR 2023): with G = V diag(lambda) V^T
// (Jacobi), rank r, the balanced gradients are B J with
// B = sqrt(lambda_r) V_r diag(lambda)^-1/2 V_r^T: orthogonal, all of norm
// sqrt(lambda_r), the smallest kept singular value. The direction is
// (B J)^T p for task preferences p, so w = B p. Eigenvalues up to
// relative_rank_tolerance * T * lambda_max count as zero (the official code's
// rule with float32's epsilon); G = 0 gives w = 0.
struct AlignedMtlOptions {
    std::vector<double> preferences;  // empty: all ones, the sum of the balanced gradients
    double relative_rank_tolerance = 1.1920928955078125e-07;
};
std::vector<double> aligned_mtl_weights(std::span<const double> gramian, int tasks,
                                        const AlignedMtlOptions& options = {});

// UPGrad (Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization",
// 2024): the mean over tasks i of g_i projected onto the dual cone
// {x : J x >= 0}. That projection is J^T v_i with v_i = argmin_{v >= e_i}
// v^T G v, so w = (1/T) sum_i v_i. (torchjd also normalises and regularises G;
// this solves the exact problem.)
struct UpgradOptions {
    int max_sweeps = 100000;
    double relative_tolerance = 1e-13;  // on the QP's KKT conditions, times max_t G_tt
};
std::vector<double> upgrad_weights(std::span<const double> gramian, int tasks, const UpgradOptions& options = {});

// GradNorm (Chen et al., ICML 2018): one step of its weight update.
//   gramian:        of the UNWEIGHTED losses' gradients at the last shared
//                   layer W; only the diagonal is used: G_W^t = w_t sqrt(G_tt).
//   weights:        the current loss weights w_t (the paper keeps sum w = T).
//   initial_losses: L_t(0), > 0;   losses: L_t(t), >= 0.
// With r_t = (L_t / L_t(0)) / mean_k (L_k / L_k(0)) and the target
// mean_k G_W^k * r_t^alpha held constant (as the paper does), the gradient of
// L_grad = sum_t |G_W^t - target_t| is sign(G_W^t - target_t) sqrt(G_tt);
// returns w - learning_rate * gradient, rescaled to sum to T. Keeping the
// weights positive is the caller's choice of learning rate.
struct GradNormOptions {
    double alpha = 1.5;
    double learning_rate = 0.025;
};
std::vector<double> gradnorm_weights(std::span<const double> gramian, int tasks, std::span<const double> weights,
                                     std::span<const double> initial_losses, std::span<const double> losses,
                                     const GradNormOptions& options = {});

}  // namespace ladon::engine
