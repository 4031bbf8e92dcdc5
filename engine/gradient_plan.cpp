// The first writer of each activation gradient (engine/gradient_plan.hpp).
#include "engine/gradient_plan.hpp"

#include <fmt/format.h>

#include "ladon/error.hpp"

namespace ladon::engine {
namespace {

int root(const Graph& graph, int tensor) {
    const int alias = graph.tensors[tensor].alias_of;
    return alias >= 0 ? alias : tensor;
}

// The inputs whose gradient node i's backward writes, as bits.
uint32_t written_inputs(const Graph& graph, const FusionPlan& fusion, std::size_t i) {
    const Node& node = graph.nodes[i];
    if (node.inputs.size() > 32)
        throw Error(fmt::format("layer '{}' has {} inputs; backward planning handles at most 32", node.name,
                                node.inputs.size()));
    const int group = fusion.group_of_node[i];
    if (group >= 0 && graph.head_groups[group].nodes.front() != int(i)) return 0;  // the group's GEMM runs at its first
    uint32_t bits = 0;
    for (std::size_t k = 0; k < node.inputs.size(); ++k) {
        const int input = root(graph, node.inputs[k]);
        if (input != 0 && input != root(graph, node.output)) bits |= uint32_t{1} << k;
    }
    return bits;
}

}  // namespace

GradientWrites plan_gradient_writes(const Graph& graph, const FusionPlan& fusion) {
    GradientWrites plan;
    const std::size_t nodes = graph.nodes.size();
    plan.first_write.assign(nodes, 0);
    plan.writes.assign(nodes, 0);
    std::vector<bool> written(graph.tensors.size(), false);
    for (const Head& head : graph.heads) written[root(graph, head.output)] = true;  // the loss stores these
    for (std::size_t i = nodes; i-- > 0;) {
        const Node& node = graph.nodes[i];
        plan.writes[i] = written_inputs(graph, fusion, i);
        for (std::size_t k = 0; k < node.inputs.size(); ++k) {
            if (!(plan.writes[i] >> k & 1u)) continue;
            const int slot = root(graph, node.inputs[k]);
            if (written[slot]) continue;
            written[slot] = true;
            plan.first_write[i] |= uint32_t{1} << k;
        }
    }
    return plan;
}

}  // namespace ladon::engine
