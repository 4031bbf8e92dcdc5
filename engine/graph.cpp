// Shape inference and parameter layout for a ModelSpec.
#include "engine/graph.hpp"

#include <fmt/format.h>

#include <map>

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

    int add_node(const LayerSpec& layer, const std::string& position, int previous, int head) {
        Node node;
        node.spec = layer;
        node.parameter_prefix = position;
        node.name = layer.name.empty() ? position : layer.name;
        node.head = head;
        const std::string who = fmt::format("layer '{}' ({})", node.name, to_string(layer.op));
        if (names_.count(node.name)) throw Error(fmt::format("model: two layers are named '{}'", node.name));
        if (layer.inputs.empty()) {
            node.inputs.push_back(previous);
        } else {
            for (const auto& input : layer.inputs) node.inputs.push_back(lookup(input, who));
        }
        const bool multi_input = layer.op == OpKind::add || layer.op == OpKind::concat;
        if (multi_input && node.inputs.size() < 2)
            throw Error(fmt::format("model: {} needs at least two inputs, got {}", who, node.inputs.size()));
        if (!multi_input && node.inputs.size() != 1)
            throw Error(fmt::format("model: {} takes one input, got {}", who, node.inputs.size()));

        const TensorShape in = graph_.tensors[node.inputs[0]].shape;
        TensorShape out = in;
        int alias = -1;
        switch (layer.op) {
            case OpKind::conv2d: {
                if (layer.out_channels <= 0)
                    throw Error(fmt::format("model: {} needs out_channels > 0, got {}", who, layer.out_channels));
                auto& c = node.conv;
                c.batch = in.batch;
                c.in_channels = in.channels;
                c.in_height = in.height;
                c.in_width = in.width;
                c.out_channels = layer.out_channels;
                c.kernel_height = layer.kernel[0];
                c.kernel_width = layer.kernel[1];
                c.stride_height = layer.stride[0] == 0 ? 1 : layer.stride[0];
                c.stride_width = layer.stride[1] == 0 ? 1 : layer.stride[1];
                c.pad_height = layer.padding[0];
                c.pad_width = layer.padding[1];
                check_window(who, in, c.kernel_height, c.kernel_width, c.stride_height, c.stride_width, c.pad_height,
                             c.pad_width, false);
                out = {in.batch, c.out_channels, c.out_height(), c.out_width()};
                const int64_t fan_in = c.in_channels * c.kernel_height * c.kernel_width;
                node.weight = add_parameter(position + ".weight",
                                            {c.out_channels, c.in_channels, c.kernel_height, c.kernel_width},
                                            BufferSlice::Init::uniform_fan_in, fan_in);
                if (layer.bias)
                    node.bias = add_parameter(position + ".bias", {c.out_channels}, BufferSlice::Init::uniform_fan_in,
                                              fan_in);
                break;
            }
            case OpKind::max_pool2d:
            case OpKind::avg_pool2d: {
                auto& p = node.pool;
                p.batch = in.batch;
                p.channels = in.channels;
                p.in_height = in.height;
                p.in_width = in.width;
                p.kernel_height = layer.kernel[0];
                p.kernel_width = layer.kernel[1];
                p.stride_height = layer.stride[0] == 0 ? layer.kernel[0] : layer.stride[0];
                p.stride_width = layer.stride[1] == 0 ? layer.kernel[1] : layer.stride[1];
                p.pad_height = layer.padding[0];
                p.pad_width = layer.padding[1];
                check_window(who, in, p.kernel_height, p.kernel_width, p.stride_height, p.stride_width, p.pad_height,
                             p.pad_width, true);
                out = {in.batch, in.channels, p.out_height(), p.out_width()};
                break;
            }
            case OpKind::dense: {
                if (layer.out_features <= 0)
                    throw Error(fmt::format("model: {} needs out_features > 0, got {}", who, layer.out_features));
                node.dense = {in.batch, in.per_sample(), layer.out_features};
                out = {in.batch, layer.out_features, 1, 1};
                node.weight = add_parameter(position + ".weight", {layer.out_features, in.per_sample()},
                                            BufferSlice::Init::uniform_fan_in, in.per_sample());
                if (layer.bias)
                    node.bias = add_parameter(position + ".bias", {layer.out_features},
                                              BufferSlice::Init::uniform_fan_in, in.per_sample());
                break;
            }
            case OpKind::relu:
            case OpKind::sigmoid:
            case OpKind::tanh: break;
            case OpKind::leaky_relu:
                if (!(layer.negative_slope >= 0.0f))
                    throw Error(fmt::format("model: {} needs negative_slope >= 0, got {}", who, layer.negative_slope));
                break;
            case OpKind::dropout:
                if (!(layer.probability >= 0.0f && layer.probability < 1.0f))
                    throw Error(fmt::format("model: {} needs probability in [0, 1), got {}", who, layer.probability));
                break;
            case OpKind::flatten:
                out = {in.batch, in.per_sample(), 1, 1};
                alias = graph_.tensors[node.inputs[0]].alias_of >= 0 ? graph_.tensors[node.inputs[0]].alias_of
                                                                      : node.inputs[0];
                break;
            case OpKind::batch_norm: {
                if (!(layer.epsilon > 0.0f) || !(layer.momentum >= 0.0f && layer.momentum <= 1.0f))
                    throw Error(fmt::format("model: {} needs epsilon > 0 and momentum in [0, 1]", who));
                if (in.batch * in.height * in.width < 2)
                    throw Error(fmt::format("model: {} needs more than one value per channel to take batch statistics; "
                                            "its input is {} (use a batch size above 1)",
                                            who, in.str()));
                node.batch_norm = {in.batch, in.channels, in.height * in.width, layer.epsilon, layer.momentum};
                node.weight = add_parameter(position + ".weight", {in.channels}, BufferSlice::Init::ones, 1);
                node.bias = add_parameter(position + ".bias", {in.channels}, BufferSlice::Init::zeros, 1);
                node.running_mean = add_state(position + ".running_mean", in.channels, BufferSlice::Init::zeros);
                node.running_var = add_state(position + ".running_var", in.channels, BufferSlice::Init::ones);
                break;
            }
            case OpKind::add:
                for (int t : node.inputs) {
                    const TensorShape& s = graph_.tensors[t].shape;
                    if (s.channels != in.channels || s.height != in.height || s.width != in.width)
                        throw Error(fmt::format("model: {} needs inputs of one shape; '{}' is {} but '{}' is {}", who,
                                                graph_.tensors[node.inputs[0]].name, in.str(), graph_.tensors[t].name,
                                                s.str()));
                }
                break;
            case OpKind::concat:
                out.channels = 0;
                for (int t : node.inputs) {
                    const TensorShape& s = graph_.tensors[t].shape;
                    if (s.height != in.height || s.width != in.width)
                        throw Error(fmt::format(
                            "model: {} concatenates channels, so its inputs need equal height and width; '{}' is {} "
                            "but '{}' is {}",
                            who, graph_.tensors[node.inputs[0]].name, in.str(), graph_.tensors[t].name, s.str()));
                    out.channels += s.channels;
                }
                break;
        }
        graph_.tensors.push_back({node.name, out, alias});
        node.output = int(graph_.tensors.size()) - 1;
        names_[node.name] = node.output;
        graph_.nodes.push_back(std::move(node));
        return graph_.nodes.back().output;
    }

    static void check_window(const std::string& who, const TensorShape& in, int64_t kh, int64_t kw, int64_t sh,
                             int64_t sw, int64_t ph, int64_t pw, bool pool) {
        if (kh <= 0 || kw <= 0) throw Error(fmt::format("model: {} needs a positive kernel, got {}x{}", who, kh, kw));
        if (sh <= 0 || sw <= 0) throw Error(fmt::format("model: {} needs a positive stride, got {}x{}", who, sh, sw));
        if (ph < 0 || pw < 0) throw Error(fmt::format("model: {} needs padding >= 0, got {}x{}", who, ph, pw));
        if (pool && (2 * ph > kh || 2 * pw > kw))
            throw Error(fmt::format("model: {} needs padding at most half the kernel ({}x{}), got {}x{}", who, kh, kw,
                                    ph, pw));
        if (in.height + 2 * ph < kh || in.width + 2 * pw < kw)
            throw Error(fmt::format(
                "model: {} has a {}x{} kernel with padding {}x{}, which does not fit its input {}; it needs height >= "
                "{} and width >= {}",
                who, kh, kw, ph, pw, in.str(), kh - 2 * ph, kw - 2 * pw));
    }

    const ModelSpec& spec_;
    Graph graph_;
    std::map<std::string, int> names_;
};

}  // namespace

Graph build_graph(const ModelSpec& spec, int64_t batch) { return GraphBuilder(spec, batch).build(); }

}  // namespace ladon::engine
