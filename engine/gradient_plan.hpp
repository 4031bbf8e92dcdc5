#pragma once
// Which write of each activation gradient comes first in backward, so that
// it stores and later ones add (issue 14): no pass zeroes the gradient arena.
// Backward runs the loss (which stores every head output's gradient), then
// the nodes from last to first; a tensor's gradient slot is first written by
// the loss if the tensor is a head's output, else by its last reader. A
// flatten writes nothing (its output shares its input's slot), a head group
// writes its input's gradient at its first node, and the model input's
// gradient is never written. Decided once per graph, on the CPU; the CUDA
// executor applies it (engine/cuda_executor.cpp).
#include <cstdint>
#include <vector>

#include "engine/fusion.hpp"
#include "engine/graph.hpp"

namespace ladon::engine {

struct GradientWrites {
    // Per node: bit k set when the node's backward is the first to write the
    // gradient of inputs[k] (for an input listed twice, its first position).
    std::vector<uint32_t> first_write;
    // Per node: bit k set when the node's backward writes the gradient of
    // inputs[k] at all.
    std::vector<uint32_t> writes;
};

// Nodes may have at most 32 inputs (a ladon::Error otherwise).
GradientWrites plan_gradient_writes(const Graph& graph, const FusionPlan& fusion);

}  // namespace ladon::engine
