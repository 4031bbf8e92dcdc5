// The fusion pass (engine/fusion.hpp).
#include "engine/fusion.hpp"

#include "engine/ops/op.hpp"

namespace ladon::engine {

FusionPlan plan_fusions(const Graph& graph) {
    FusionPlan plan;
    const std::size_t nodes = graph.nodes.size();
    plan.fused_activation.assign(nodes, false);
    plan.epilogue.assign(nodes, -1);
    plan.group_of_node.assign(nodes, -1);
    for (std::size_t g = 0; g < graph.head_groups.size(); ++g) {
        std::vector<int> heads;
        for (int n : graph.head_groups[g].nodes) {
            plan.group_of_node[n] = int(g);
            heads.push_back(graph.nodes[n].head);
        }
        plan.group_heads.push_back(std::move(heads));
    }
    std::vector<int> readers(graph.tensors.size(), 0);
    for (const Node& node : graph.nodes)
        for (int input : node.inputs) ++readers[input];
    for (const Head& head : graph.heads) ++readers[head.output];
    for (std::size_t i = 0; i + 1 < nodes; ++i) {
        const Node& layer = graph.nodes[i];
        const Node& next = graph.nodes[i + 1];
        const ops::Activation activation = node_activation(next);
        const auto takes_epilogue = op_definition(layer.spec.op).takes_epilogue;
        const bool producer = takes_epilogue && takes_epilogue(activation) && plan.group_of_node[i] < 0;
        const bool fusable = activation != ops::Activation::identity &&
                             !(activation == ops::Activation::leaky_relu && !(next.spec.negative_slope > 0.0f));
        if (producer && fusable && next.inputs[0] == layer.output && readers[layer.output] == 1) {
            plan.fused_activation[i + 1] = true;
            plan.epilogue[i] = int(i + 1);
        }
    }
    return plan;
}

}  // namespace ladon::engine
