#pragma once
// The fusion pass: which activation layers run in the epilogue of the conv
// or dense layer before them, and which heads' first dense layers run as one
// GEMM (Graph::head_groups). Decided once per graph from the op registry's
// capabilities (engine/ops/op.hpp), on the CPU; a backend applies the result
// (today the CUDA backend: the CPU's BLAS path has no epilogues and runs each
// head's GEMM alone, which keeps its results bit for bit what they were).
#include <vector>

#include "engine/graph.hpp"

namespace ladon::engine {

struct FusionPlan {
    // Per node: an activation computed in its producer's epilogue (its own
    // forward does nothing; its backward reads the sign from y).
    std::vector<bool> fused_activation;
    std::vector<int> epilogue;  // per node: the index of the activation it computes, or -1
    std::vector<int> group_of_node;  // per node: the head group whose GEMM computes it, or -1
    std::vector<std::vector<int>> group_heads;  // per head group: its heads, in order
};

// An activation right after a layer whose kernels take it as an epilogue
// (conv and dense: any; batch norm and add: relu), not in a head group, that is that
// layer's only reader is fused, where its backward can take the sign from y:
// relu, sigmoid, tanh, leaky relu with a positive slope.
FusionPlan plan_fusions(const Graph& graph);

}  // namespace ladon::engine
