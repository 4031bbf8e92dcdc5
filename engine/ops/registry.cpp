// The op table (engine/ops/op.hpp), the list of engine/ops/op_list.hpp, and
// what every op's backend functions share: OpStep's views of the buffers.
#if !defined(LADON_OPS_CUDA)
#include <fmt/format.h>

#include <array>

#include "engine/executor.hpp"
#include "engine/ops/op.hpp"
#include "engine/ops/op_list.hpp"
#include "ladon/error.hpp"

namespace ladon::engine {

#define LADON_DECLARE_OP(name) extern const OpDefinition name##_op;
LADON_OPS(LADON_DECLARE_OP)
#undef LADON_DECLARE_OP

namespace {
#define LADON_OP_ADDRESS(name) &name##_op,
constexpr std::array table{LADON_OPS(LADON_OP_ADDRESS)};
#undef LADON_OP_ADDRESS
}  // namespace

std::span<const OpDefinition* const> op_definitions() { return table; }

const OpDefinition& op_definition(OpKind kind) {
    const auto index = std::size_t(kind);
    if (index >= table.size() || table[index]->kind != kind)
        throw Error(fmt::format("op registry: no definition for op kind {} (engine/ops/op_list.hpp lists the ops in "
                                "OpKind order)",
                                int(kind)));
    return *table[index];
}

const OpDefinition* find_op(std::string_view name) {
    for (const OpDefinition* op : table)
        if (name == op->name) return op;
    return nullptr;
}

LayerSpec resolved(LayerSpec layer) {
    if (const auto resolve = op_definition(layer.op).resolve) resolve(layer);
    return layer;
}

float* OpStep::value(int tensor) const { return buffers.activations + buffers.plan->offsets[tensor]; }
float* OpStep::grad(int tensor) const { return buffers.activation_gradients + buffers.plan->offsets[tensor]; }
float* OpStep::param(int slice) const {
    return slice < 0 ? nullptr : buffers.parameters + graph().parameters[slice].offset;
}
float* OpStep::param_grad(int slice) const {
    return slice < 0 ? nullptr : buffers.gradients + graph().parameters[slice].offset;
}
float* OpStep::state(int slice) const { return buffers.state + graph().state[slice].offset; }
int32_t* OpStep::argmax() const { return buffers.argmax + buffers.plan->argmax_offsets[index]; }
float* OpStep::saved() const { return buffers.saved + buffers.plan->saved_offsets[index]; }
bool OpStep::needs_grad(int tensor) const {
    const int alias = graph().tensors[tensor].alias_of;
    return (alias >= 0 ? alias : tensor) != 0;
}

}  // namespace ladon::engine

#else  // the CUDA half
#include <array>

#include "engine/ops/cuda_op.hpp"
#include "engine/ops/op_list.hpp"
#include "ladon/error.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {

#define LADON_DECLARE_OP(name) extern const CudaOpDefinition name##_cuda;
LADON_OPS(LADON_DECLARE_OP)
#undef LADON_DECLARE_OP

namespace {
#define LADON_OP_ADDRESS(name) &name##_cuda,
constexpr std::array table{LADON_OPS(LADON_OP_ADDRESS)};
#undef LADON_OP_ADDRESS
}  // namespace

const CudaOpDefinition& cuda_op_definition(OpKind kind) {
    const auto index = std::size_t(kind);
    if (index >= table.size() || table[index]->kind != kind)
        throw Error("op registry: no CUDA definition for op kind " + std::to_string(int(kind)));
    return *table[index];
}

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
#endif
