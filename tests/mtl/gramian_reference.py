#!/usr/bin/python3
"""Reference results for the Gramian solvers (engine/weighting/gramian.hpp).

Written from the papers' equations on explicit gradient matrices J (T x D,
one task's gradient per row), not through the Gramian route the C++ takes:
PCGrad and IMTL-G project actual vectors, Aligned-MTL takes the SVD of J,
UPGrad projects onto the dual cone {x : J x >= 0} face by face, MGDA and
CAGrad enumerate every support of the simplex and keep the one whose KKT
conditions hold (then check strong duality, and a grid for T <= 3), GradNorm
differentiates its L_grad by central differences.

Prints one JSON object: {"cases": [...]}, each case with J, G = J J^T, the
parameters used and, per method, the expected combined direction J^T w (and
the weights where they are unique). Run with /usr/bin/python3 (needs NumPy).
"""
import itertools
import json
import sys

import numpy as np

FLOAT32_EPSILON = float(np.finfo(np.float32).eps)
MASK64 = (1 << 64) - 1


# ---- PCGrad's task order: splitmix64 driving Fisher-Yates (the C++ header's spec)
class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)


def pcgrad_orders(tasks, seed):
    random = SplitMix64(seed)
    orders = []
    for i in range(tasks):
        order = [j for j in range(tasks) if j != i]
        for k in range(len(order) - 1, 0, -1):
            swap = random.next() % (k + 1)
            order[k], order[swap] = order[swap], order[k]
        orders.append(order)
    return orders


# ---- PCGrad (Yu et al. 2020, Algorithm 1), on the vectors themselves
def pcgrad_direction(J, seed):
    projected = []
    for i, order in enumerate(pcgrad_orders(len(J), seed)):
        g = J[i].copy()
        for j in order:
            inner = g @ J[j]
            if inner < 0:
                g = g - inner / (J[j] @ J[j]) * J[j]
        projected.append(g)
    return np.sum(projected, axis=0)


# ---- MGDA (Sener & Koltun 2018): min ||J^T w|| over the simplex, by supports
def simplex_supports(tasks):
    for size in range(1, tasks + 1):
        yield from itertools.combinations(range(tasks), size)


def mgda_weights(G):
    tasks = len(G)
    best, best_value = None, np.inf
    for support in simplex_supports(tasks):
        s = list(support)
        # Stationary on the support's face: G_SS w_S = mu 1, sum w_S = 1.
        system = np.zeros((len(s) + 1, len(s) + 1))
        system[: len(s), : len(s)] = G[np.ix_(s, s)]
        system[: len(s), -1] = -1.0
        system[-1, : len(s)] = 1.0
        rhs = np.zeros(len(s) + 1)
        rhs[-1] = 1.0
        solution, *_ = np.linalg.lstsq(system, rhs, rcond=None)
        w = np.zeros(tasks)
        w[s] = solution[: len(s)]
        value = w @ G @ w
        if w.min() < -1e-12 or (G @ w).min() < value - 1e-9 * max(1.0, np.abs(G).max()):
            continue
        if value < best_value - 1e-15:
            best, best_value = w, value
    return np.clip(best, 0.0, None) / np.clip(best, 0.0, None).sum()


def check_mgda(J, w):
    d = J.T @ w
    # The min-norm point d of the hull: g_t . d >= ||d||^2 for every task.
    assert (J @ d).min() >= d @ d - 1e-9 * max(1.0, np.abs(J @ J.T).max()), "MGDA reference is not the min-norm point"


# ---- CAGrad (Liu et al. 2021): min_w g_w.g0 + sqrt(phi) ||g_w||, then d
def cagrad_objective(G, w, c):
    tasks = len(G)
    b = G @ np.full(tasks, 1.0 / tasks)
    sqrt_phi = c * np.sqrt(max(np.full(tasks, 1.0 / tasks) @ b, 0.0))
    return w @ b + sqrt_phi * np.sqrt(max(w @ G @ w, 0.0))


def cagrad_dual_weights(G, c):
    """Every support S: on it the gradient b + s G w / ||g_w|| equals mu 1; with
    v = w / ||g_w|| that is G_SS v = (mu 1 - b) / s and v^T G_SS v = 1, a
    quadratic in mu. Keep the candidates whose KKT conditions hold."""
    tasks = len(G)
    ones = np.full(tasks, 1.0 / tasks)
    b = G @ ones
    s = c * np.sqrt(ones @ b)
    best, best_value = None, np.inf
    for support in simplex_supports(tasks):
        idx = list(support)
        G_S = G[np.ix_(idx, idx)]
        if np.linalg.matrix_rank(G_S) < len(idx):
            continue
        inverse = np.linalg.inv(G_S)
        one, b_S = np.ones(len(idx)), b[idx]
        qa = one @ inverse @ one
        qb = -2.0 * (one @ inverse @ b_S)
        qc = b_S @ inverse @ b_S - s * s
        discriminant = qb * qb - 4 * qa * qc
        if discriminant < 0:
            continue
        for mu in ((-qb + np.sqrt(discriminant)) / (2 * qa), (-qb - np.sqrt(discriminant)) / (2 * qa)):
            v = inverse @ (mu * one - b_S) / s
            if v.sum() <= 0:
                continue
            w = np.zeros(tasks)
            w[idx] = v / v.sum()
            if w.min() < -1e-12:
                continue
            gradient = b + s * (G @ w) / np.sqrt(w @ G @ w)
            if gradient.min() < mu - 1e-9 * max(1.0, abs(mu)):
                continue
            value = cagrad_objective(G, w, c)
            if value < best_value:
                best, best_value = w, value
    return best


def simplex_grid(tasks, steps):
    if tasks == 1:
        yield np.array([1.0])
        return
    for corner in itertools.product(range(steps + 1), repeat=tasks - 1):
        if sum(corner) <= steps:
            yield np.array(list(corner) + [steps - sum(corner)], dtype=float) / steps


def cagrad_direction(J, c, rescale):
    tasks = len(J)
    G = J @ J.T
    g0 = J.mean(axis=0)
    w = cagrad_dual_weights(G, c)
    gw = J.T @ w
    d = g0 + c * np.linalg.norm(g0) / np.linalg.norm(gw) * gw
    dual_scale = c * np.linalg.norm(g0)
    # Strong duality: the primal max_d min_t g_t.d over the ball equals the dual minimum.
    dual = g0 @ gw + c * np.linalg.norm(g0) * np.linalg.norm(gw)
    assert abs((J @ d).min() - dual) <= 1e-9 * max(1.0, abs(dual)), "CAGrad reference: no strong duality"
    assert abs(np.linalg.norm(d - g0) - c * np.linalg.norm(g0)) <= 1e-9 * np.linalg.norm(g0)
    if tasks <= 3:
        points = np.array(list(simplex_grid(tasks, 200)))
        quadratic = np.einsum("pi,ij,pj->p", points, G, points)
        grid = points @ (G @ np.full(tasks, 1.0 / tasks)) + dual_scale * np.sqrt(np.maximum(quadratic, 0.0))
        grid_min = grid.min()
        assert cagrad_objective(G, w, c) <= grid_min + 1e-12, "CAGrad reference: the grid found a lower dual"
    return d / (1.0 + c * c) if rescale else d


# ---- IMTL-G (Liu et al. 2021, eq. for alpha), with actual unit vectors
def imtl_g_is_solvable(J):
    """D U^T is invertible: always for independent gradients, often otherwise
    (three gradients in a plane give the zero direction)."""
    if len(J) == 1:
        return True
    units = J / np.linalg.norm(J, axis=1, keepdims=True)
    return np.linalg.cond((J[0] - J[1:]) @ (units[0] - units[1:]).T) < 1e10


def imtl_g_direction(J):
    units = J / np.linalg.norm(J, axis=1, keepdims=True)
    D = J[0] - J[1:]
    U = units[0] - units[1:]
    alpha_rest = (J[0] @ U.T) @ np.linalg.inv(D @ U.T)
    alpha = np.concatenate([[1.0 - alpha_rest.sum()], alpha_rest])
    return J.T @ alpha, alpha


# ---- Aligned-MTL (Senushkin et al. 2023): J = V S U^T, balanced J = s_min V U^T
def aligned_mtl_direction(J, preferences):
    V, S, Ut = np.linalg.svd(J, full_matrices=False)
    rank = int(np.sum(S * S > (S[0] ** 2) * len(J) * FLOAT32_EPSILON))
    balanced = S[rank - 1] * V[:, :rank] @ Ut[:rank]
    return balanced.T @ preferences


# ---- UPGrad (Quinton & Rey 2024): mean of J^T e_i projected onto {x : J x >= 0}
def project_onto_dual_cone(J, y):
    """The projection lies in the relative interior of a face {J_A x = 0}, where
    it is y's projection onto null(J_A): try every A, keep the closest feasible."""
    best, best_distance = None, np.inf
    scale = max(1.0, np.abs(J).max() * np.linalg.norm(y))
    for size in range(len(J) + 1):
        for active in itertools.combinations(range(len(J)), size):
            x = y.copy()
            if active:
                J_A = J[list(active)]
                x = y - J_A.T @ (np.linalg.pinv(J_A @ J_A.T) @ (J_A @ y))
            if (J @ x).min() < -1e-10 * scale:
                continue
            distance = np.linalg.norm(x - y)
            if distance < best_distance:
                best, best_distance = x, distance
    return best


def upgrad_direction(J):
    return np.mean([project_onto_dual_cone(J, J[i]) for i in range(len(J))], axis=0)


# ---- GradNorm (Chen et al. 2018, eq. 2): one step on the weights, then sum w = T
def gradnorm_loss(weights, norms, initial_losses, losses, alpha, target=None):
    weighted_norms = weights * norms
    if target is None:
        ratios = losses / initial_losses
        relative = ratios / ratios.mean()
        target = weighted_norms.mean() * relative**alpha
    return np.abs(weighted_norms - target).sum(), target


def gradnorm_step(J, weights, initial_losses, losses, alpha, learning_rate):
    norms = np.linalg.norm(J, axis=1)  # of the unweighted losses' gradients
    _, target = gradnorm_loss(weights, norms, initial_losses, losses, alpha)
    gradient = np.zeros(len(J))
    h = 1e-7
    for t in range(len(J)):
        step = np.zeros(len(J))
        step[t] = h
        plus, _ = gradnorm_loss(weights + step, norms, initial_losses, losses, alpha, target)
        minus, _ = gradnorm_loss(weights - step, norms, initial_losses, losses, alpha, target)
        gradient[t] = (plus - minus) / (2 * h)
    updated = weights - learning_rate * gradient
    return updated * len(J) / updated.sum()


def weights_are_unique(G):
    return np.linalg.matrix_rank(G) == len(G)


def as_list(array):
    return np.asarray(array, dtype=float).tolist()


def make_case(name, J, rng, cagrad_c=0.4, pcgrad_seed=7, gradnorm_alpha=1.5):
    tasks = len(J)
    G = J @ J.T
    unique = bool(weights_are_unique(G))
    mgda = mgda_weights(G)
    check_mgda(J, mgda)
    initial_losses = rng.uniform(0.5, 3.0, tasks)
    losses = initial_losses * rng.uniform(0.2, 1.0, tasks)
    gradnorm_weights = rng.uniform(0.5, 1.5, tasks)
    gradnorm_weights *= tasks / gradnorm_weights.sum()
    preferences = np.ones(tasks)
    learning_rate = 0.1 / np.linalg.norm(J, axis=1).mean()  # keeps every weight positive
    case = {
        "name": name,
        "tasks": tasks,
        "J": as_list(J),
        "G": as_list(G),
        "weights_unique": unique,
        "mgda": {"direction": as_list(J.T @ mgda), "weights": as_list(mgda)},
        "pcgrad": {"seed": pcgrad_seed, "orders": pcgrad_orders(tasks, pcgrad_seed),
                   "direction": as_list(pcgrad_direction(J, pcgrad_seed))},
        "cagrad": {"c": cagrad_c, "direction": as_list(cagrad_direction(J, cagrad_c, False)),
                   "rescaled_direction": as_list(cagrad_direction(J, cagrad_c, True))},
        "aligned_mtl": {"preferences": as_list(preferences),
                        "direction": as_list(aligned_mtl_direction(J, preferences))},
        "upgrad": {"direction": as_list(upgrad_direction(J))},
        "gradnorm": {"alpha": gradnorm_alpha, "learning_rate": learning_rate, "weights": as_list(gradnorm_weights),
                     "initial_losses": as_list(initial_losses), "losses": as_list(losses),
                     "updated_weights": as_list(gradnorm_step(J, gradnorm_weights, initial_losses, losses,
                                                              gradnorm_alpha, learning_rate))},
    }
    if imtl_g_is_solvable(J):
        direction, alpha = imtl_g_direction(J)
        case["imtl_g"] = {"direction": as_list(direction), "weights": as_list(alpha)}
    return case


def main():
    rng = np.random.default_rng(20240615)
    cases = []
    for tasks, dim in ((1, 5), (2, 6), (3, 7), (4, 9), (4, 5)):
        cases.append(make_case(f"random_{tasks}x{dim}", rng.standard_normal((tasks, dim)), rng))
    # Gradients of very different sizes, pulling against each other.
    scaled = rng.standard_normal((3, 8)) * np.array([[10.0], [1.0], [0.1]])
    scaled[1] -= 1.5 * scaled[0] / 10.0
    cases.append(make_case("conflicting_scales_3x8", scaled, rng, cagrad_c=0.8, pcgrad_seed=12345))
    # More tasks than dimensions: G singular, only directions are unique.
    cases.append(make_case("rank_deficient_3x2", rng.standard_normal((3, 2)), rng, pcgrad_seed=3))
    # Two tasks with the same gradient: IMTL-G's system is singular.
    duplicate = rng.standard_normal((3, 5))
    duplicate[2] = duplicate[0]
    cases.append(make_case("duplicate_task_3x5", duplicate, rng, pcgrad_seed=99))
    # No conflict at all: every method's assumptions hold trivially.
    aligned = np.abs(rng.standard_normal((3, 6)))
    cases.append(make_case("agreeing_3x6", aligned, rng, cagrad_c=0.2))
    json.dump({"cases": cases}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
