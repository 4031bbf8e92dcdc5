// Shape inference and parameter layout for a ModelSpec.
#include "engine/graph.hpp"

#include <fmt/format.h>

#include <map>

#include "engine/ops/op.hpp"
#include "ladon/error.hpp"

namespace ladon::engine {

std::string TensorShape::str() const { return fmt::format("[{}, {}, {}, {}]", batch, channels, height, width); }

namespace {

class GraphBuilder {
public:
    GraphBuilder(const ModelSpec& spec, int64_t batch) : spec_(spec) {
        graph_.batch = batch;
        if (batch <= 0) throw Error(fmt::format("model: batch size must be positive, got {}", batch));
        if (spec.channels <= 0 || spec.height <= 0 || spec.width <= 0)
            throw Error(fmt::format("model: input shape must be positive [C, H, W], got [{}, {}, {}]", spec.channels,
                                    spec.height, spec.width));
        graph_.tensors.push_back({"input", {batch, spec.channels, spec.height, spec.width}, -1});
        names_["input"] = 0;
    }

    Graph build() {
        int previous = 0;
        for (std::size_t i = 0; i < spec_.trunk.size(); ++i)
            previous = add_node(spec_.trunk[i], fmt::format("trunk.{}", i), previous, -1);
        const int trunk_output = previous;
        if (spec_.heads.empty()) throw Error("model: no heads; a model needs at least one task head");
        for (std::size_t h = 0; h < spec_.heads.size(); ++h) {
            const HeadSpec& head = spec_.heads[h];
            if (head.name.empty()) throw Error(fmt::format("model: head {} has no name", h));
            for (std::size_t k = 0; k < h; ++k)
                if (spec_.heads[k].name == head.name) throw Error(fmt::format("model: two heads are named '{}'", head.name));
            int input = trunk_output;
            if (!head.input.empty()) input = lookup(head.input, fmt::format("head '{}'", head.name));
            if (head.layers.empty())
                throw Error(fmt::format("model: head '{}' has no layers; it needs at least one (e.g. dense)", head.name));
            int out = input;
            for (std::size_t j = 0; j < head.layers.size(); ++j)
                out = add_node(head.layers[j], fmt::format("heads.{}.{}", head.name, j), out, int(h));
            // The loss overwrites each head's logit gradient, so two heads
            // whose logits share storage (flatten-only heads on one layer)
            // would lose all but one head's gradient.
            for (const Head& other : graph_.heads)
                if (storage_of(other.output) == storage_of(out))
                    throw Error(fmt::format(
                        "model: heads '{}' and '{}' both output the values of '{}' (flatten is a view, not a copy); "
                        "give one of them a layer of its own (e.g. dense)",
                        other.spec.name, head.name, graph_.tensors[storage_of(out)].name));
            Head compiled;
            compiled.spec = head;
            compiled.output = out;
            compiled.width = graph_.tensors[out].shape.per_sample();
            graph_.heads.push_back(std::move(compiled));
        }
        group_heads();
        return std::move(graph_);
    }

private:
    // Heads whose first layer is a dense layer on the same tensor form a
    // group (HeadGroup); its weights are then laid out as one [sum of
    // out_features, in_features] matrix, and its biases as one vector, so a
    // backend can run the group as one GEMM. Only offsets move: slices keep
    // their order, so initialisation draws the same numbers.
    void group_heads() {
        std::map<int, std::vector<int>> by_input;  // input storage -> first dense node of each head
        for (std::size_t h = 0; h < graph_.heads.size(); ++h) {
            for (std::size_t i = 0; i < graph_.nodes.size(); ++i) {
                const Node& node = graph_.nodes[i];
                if (node.head != int(h)) continue;
                if (node.spec.op == OpKind::dense) by_input[storage_of(node.inputs[0])].push_back(int(i));
                break;
            }
        }
        std::vector<int> group_of(graph_.parameters.size(), -1);
        for (const auto& [input, nodes] : by_input) {
            if (nodes.size() < 2) continue;
            const bool bias = graph_.nodes[nodes[0]].bias >= 0;
            bool consistent = true;
            for (int n : nodes) consistent = consistent && (graph_.nodes[n].bias >= 0) == bias;
            if (!consistent) continue;
            HeadGroup group;
            group.input = input;
            group.nodes = nodes;
            group.in_features = graph_.nodes[nodes[0]].dense.in_features;
            for (int n : nodes) group.out_features += graph_.nodes[n].dense.out_features;
            for (int n : nodes) {
                group_of[graph_.nodes[n].weight] = int(graph_.head_groups.size());
                if (bias) group_of[graph_.nodes[n].bias] = int(graph_.head_groups.size());
            }
            graph_.head_groups.push_back(std::move(group));
        }
        if (graph_.head_groups.empty()) return;
        int64_t offset = 0;
        std::vector<bool> placed(graph_.head_groups.size(), false);
        for (std::size_t p = 0; p < graph_.parameters.size(); ++p) {
            const int g = group_of[p];
            if (g < 0) {
                graph_.parameters[p].offset = offset;
                offset += graph_.parameters[p].count;
                continue;
            }
            if (placed[g]) continue;
            placed[g] = true;
            HeadGroup& group = graph_.head_groups[g];
            group.weight_offset = offset;
            for (int n : group.nodes) {
                graph_.parameters[graph_.nodes[n].weight].offset = offset;
                offset += graph_.parameters[graph_.nodes[n].weight].count;
            }
            if (graph_.nodes[group.nodes[0]].bias < 0) continue;
            group.bias_offset = offset;
            for (int n : group.nodes) {
                graph_.parameters[graph_.nodes[n].bias].offset = offset;
                offset += graph_.parameters[graph_.nodes[n].bias].count;
            }
        }
    }

    int storage_of(int tensor) const {
        const int alias = graph_.tensors[tensor].alias_of;
        return alias >= 0 ? alias : tensor;
    }

    int lookup(const std::string& name, const std::string& who) const {
        auto it = names_.find(name);
        if (it == names_.end())
            throw Error(fmt::format("model: {} reads '{}', which is not the input or an earlier layer", who, name));
        return it->second;
    }

    int add_parameter(std::string name, std::vector<int64_t> dims, BufferSlice::Init init, int64_t fan_in) {
        BufferSlice slice{std::move(name), graph_.parameter_count, 1, std::move(dims), init, fan_in};
        for (int64_t d : slice.dims) slice.count *= d;
        graph_.parameter_count += slice.count;
        graph_.parameters.push_back(std::move(slice));
        return int(graph_.parameters.size()) - 1;
    }
    int add_state(std::string name, int64_t count, BufferSlice::Init init) {
        graph_.state.push_back({std::move(name), graph_.state_count, count, {count}, init, 1});
        graph_.state_count += count;
        return int(graph_.state.size()) - 1;
    }

    // An op's view of the node it infers (engine/ops/op.hpp).
    class Inference final : public NodeInference {
    public:
        Inference(GraphBuilder& builder, Node& node, std::string who)
            : builder_(builder), node_(node), who_(std::move(who)) {}
        Node& node() override { return node_; }
        const TensorShape& input(std::size_t k) const override {
            return builder_.graph_.tensors[node_.inputs[k]].shape;
        }
        const std::string& input_name(std::size_t k) const override {
            return builder_.graph_.tensors[node_.inputs[k]].name;
        }
        std::size_t inputs() const override { return node_.inputs.size(); }
        int add_parameter(const char* suffix, std::vector<int64_t> dims, BufferSlice::Init init,
                          int64_t fan_in) override {
            return builder_.add_parameter(node_.parameter_prefix + "." + suffix, std::move(dims), init, fan_in);
        }
        int add_state(const char* suffix, int64_t count, BufferSlice::Init init) override {
            return builder_.add_state(node_.parameter_prefix + "." + suffix, count, init);
        }
        void alias_input() override { alias = builder_.storage_of(node_.inputs[0]); }
        [[noreturn]] void fail(const std::string& what) const override {
            throw Error(fmt::format("model: {} {}", who_, what));
        }
        int alias = -1;

    private:
        GraphBuilder& builder_;
        Node& node_;
        std::string who_;
    };

    int add_node(const LayerSpec& layer, const std::string& position, int previous, int head) {
        const OpDefinition& op = op_definition(layer.op);
        Node node;
        node.spec = resolved(layer);
        node.parameter_prefix = position;
        node.name = layer.name.empty() ? position : layer.name;
        node.head = head;
        const std::string who = fmt::format("layer '{}' ({})", node.name, op.name);
        if (names_.count(node.name)) throw Error(fmt::format("model: two layers are named '{}'", node.name));
        if (layer.inputs.empty()) {
            node.inputs.push_back(previous);
        } else {
            for (const auto& input : layer.inputs) node.inputs.push_back(lookup(input, who));
        }
        const auto given = node.inputs.size();
        if (op.max_inputs == 0 && given < std::size_t(op.min_inputs))
            throw Error(fmt::format("model: {} needs at least {} inputs, got {}", who, count_word(op.min_inputs), given));
        if (op.max_inputs == 1 && given != 1)
            throw Error(fmt::format("model: {} takes one input, got {}", who, given));
        if (op.max_inputs > 1 && (given < std::size_t(op.min_inputs) || given > std::size_t(op.max_inputs)))
            throw Error(fmt::format("model: {} takes {} to {} inputs, got {}", who, op.min_inputs, op.max_inputs,
                                    given));
        Inference inference(*this, node, who);
        const TensorShape out = op.infer(inference);
        graph_.tensors.push_back({node.name, out, inference.alias});
        node.output = int(graph_.tensors.size()) - 1;
        names_[node.name] = node.output;
        graph_.nodes.push_back(std::move(node));
        return graph_.nodes.back().output;
    }

    static std::string count_word(int count) {
        constexpr const char* words[] = {"zero", "one", "two", "three", "four"};
        return count >= 0 && count < 5 ? words[count] : std::to_string(count);
    }

    const ModelSpec& spec_;
    Graph graph_;
    std::map<std::string, int> names_;
};

}  // namespace

Graph build_graph(const ModelSpec& spec, int64_t batch) { return GraphBuilder(spec, batch).build(); }

}  // namespace ladon::engine
