#pragma once
// The op registry: every layer kind (conv2d, dense, relu, ...) is defined
// once, in engine/ops/<op>.cpp, by an OpDefinition: its config fields (read
// and written from that one list), its shape and parameter inference, its
// cost, what it needs planned, its fusion capabilities and its CPU forward and
// backward. The same file's CUDA half (compiled again with the CUDA executor,
// engine/ops/cuda_op.hpp) gives its CUDA forward and backward. The graph
// builder, the config reader and writer and both executors walk the nodes
// through this table; none of them switches on OpKind. README.md, "Adding an
// op", lists the files a new op touches.
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/graph.hpp"
#include "kernels/ops.hpp"

namespace ladon::engine {

struct ArenaPlan;

// One key of a layer's config table, e.g. `kernel = [3, 3]`, and the
// LayerSpec member it sets.
struct OpField {
    const char* key;
    std::variant<int64_t LayerSpec::*, std::array<int64_t, 2> LayerSpec::*, bool LayerSpec::*, float LayerSpec::*>
        member;
};

// What an op's infer() works with: the node being built, its inputs' shapes,
// and the graph's parameter and state buffers.
class NodeInference {
public:
    virtual ~NodeInference() = default;
    virtual Node& node() = 0;
    virtual const TensorShape& input(std::size_t k) const = 0;
    virtual const std::string& input_name(std::size_t k) const = 0;
    virtual std::size_t inputs() const = 0;
    // Adds "<position>.<suffix>" (e.g. "trunk.0.weight") to the parameters;
    // returns its slice index.
    virtual int add_parameter(const char* suffix, std::vector<int64_t> dims, BufferSlice::Init init,
                              int64_t fan_in) = 0;
    virtual int add_state(const char* suffix, int64_t count, BufferSlice::Init init) = 0;
    // The output shares its first input's storage (a view, like flatten).
    virtual void alias_input() = 0;
    // Throws "model: layer 'name' (op) <what>".
    [[noreturn]] virtual void fail(const std::string& what) const = 0;
};

// Work per training step, for throughput and bandwidth reports.
struct OpCost {
    double forward_flops = 0, backward_flops = 0;
    double forward_bytes = 0, backward_bytes = 0;  // compulsory traffic: each operand read or written once
};

// Where a backend keeps a step's tensors: host memory on the CPU, device
// memory on the CUDA backend. Every pointer is the base of a flat buffer.
struct OpBuffers {
    const Graph* graph = nullptr;
    const ArenaPlan* plan = nullptr;
    float *activations = nullptr, *activation_gradients = nullptr;
    float *parameters = nullptr, *gradients = nullptr, *state = nullptr;
    float *saved = nullptr, *workspace = nullptr;
    int32_t* argmax = nullptr;
};

// One node's forward or backward, as an op's backend functions see it.
struct OpStep {
    const OpBuffers& buffers;
    const Node& node;
    std::size_t index;  // the node's position in graph.nodes
    bool training;
    uint64_t dropout_seed;

    const Graph& graph() const { return *buffers.graph; }
    const TensorShape& shape(int tensor) const { return buffers.graph->tensors[tensor].shape; }
    float* value(int tensor) const;
    float* grad(int tensor) const;
    const float* x() const { return value(node.inputs[0]); }  // the first input
    float* y() const { return value(node.output); }
    const float* grad_y() const { return grad(node.output); }
    int64_t count() const { return shape(node.output).elements(); }  // output elements
    float* param(int slice) const;       // nullptr for slice -1
    float* param_grad(int slice) const;  // nullptr for slice -1
    float* state(int slice) const;
    int32_t* argmax() const;  // this node's, where it asked for one (OpDefinition::argmax_count)
    float* saved() const;     // this node's, where it asked for some (OpDefinition::saved_count)
    // The model input needs no gradient; neither does a view of it.
    bool needs_grad(int tensor) const;
};

// The CPU backend's extras: synchronised batch norm across processes.
struct CpuOpStep : OpStep {
    const std::function<void(double*, int64_t)>* batch_norm_sync = nullptr;  // empty: this process's batch
    double* batch_norm_sums = nullptr;                                        // sized for the widest batch norm
};

struct OpDefinition {
    OpKind kind;
    const char* name;  // the config's `op`
    std::span<const OpField> fields = {};
    int min_inputs = 1, max_inputs = 1;  // max_inputs 0: any number
    // Fills the effective values of fields left at their "default" value
    // (stride 0: a conv's 1, a pool's kernel) so a written config shows what
    // runs. Null: nothing to fill.
    void (*resolve)(LayerSpec&) = nullptr;
    // Checks the layer against its inputs, sets the node's kernel shapes and
    // parameters, and returns the output's shape.
    TensorShape (*infer)(NodeInference&) = nullptr;
    OpCost (*cost)(const Graph&, const Node&) = nullptr;
    // Planned memory per node, in elements: max pool's argmax indices,
    // batch norm's saved statistics. Null: none.
    int64_t (*argmax_count)(const Node&) = nullptr;
    int64_t (*saved_count)(const Node&) = nullptr;
    // Fusion: an activation layer's kernel name (identity for other ops);
    // whether the op's CUDA kernels can apply that activation to their output
    // (null: none).
    ops::Activation activation = ops::Activation::identity;
    bool (*takes_epilogue)(ops::Activation) = nullptr;
    // The CPU backend.
    void (*cpu_forward)(const CpuOpStep&) = nullptr;
    void (*cpu_backward)(const CpuOpStep&) = nullptr;
    std::size_t (*cpu_workspace_floats)(const Node&, int threads) = nullptr;
};

// Every op, in OpKind order; op_definition(kind).kind == kind.
std::span<const OpDefinition* const> op_definitions();
const OpDefinition& op_definition(OpKind kind);
const OpDefinition* find_op(std::string_view name);  // nullptr if none has that name

// The layer with its effective values (OpDefinition::resolve).
LayerSpec resolved(LayerSpec layer);
// A node's activation kernel, where the node is an activation layer.
inline ops::Activation node_activation(const Node& node) { return op_definition(node.spec.op).activation; }

}  // namespace ladon::engine
