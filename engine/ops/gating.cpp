// global_avg_pool ([N, C, H, W] to [N, C], PyTorch's adaptive_avg_pool2d(1)
// flattened), multiply (two inputs of one shape, or a [N, C] gate scaling
// [N, C, H, W]: squeeze-and-excitation) and mixture (a gate [N, E] and E
// experts of one shape, y = sum_e gate[:, e] * expert_e: MMoE, PLE).
#include <array>
#include <cstddef>
#include <span>

#include "engine/ops/op.hpp"

// What both halves share: where each operand lives.
namespace ladon::engine {
namespace {

// multiply's kernel arguments: y[p, s] = a[p] * b[p, s].
struct MultiplyLayout {
    int a, b;  // graph tensors
    int64_t planes, spatial;
};

MultiplyLayout multiply_layout(const OpStep& s) {
    const int first = s.node.inputs[0], second = s.node.inputs[1];
    const TensorShape &x = s.shape(first), &y = s.shape(second);
    if (x.elements() == y.elements()) return {first, second, x.elements(), 1};
    const bool first_is_gate = x.elements() < y.elements();
    const TensorShape& gate = first_is_gate ? x : y;
    return {first_is_gate ? first : second, first_is_gate ? second : first, gate.elements(),
            s.count() / gate.elements()};
}

// The experts' values and gradients (nullptr where none is needed), for the
// kernels of both backends.
struct MixtureOperands {
    std::array<const float*, ops::max_mixture_experts> values{};
    std::array<float*, ops::max_mixture_experts> gradients{};
    std::size_t count = 0;

    explicit MixtureOperands(const OpStep& s) : count(s.node.inputs.size() - 1) {
        for (std::size_t e = 0; e < count; ++e) {
            const int input = s.node.inputs[e + 1];
            values[e] = s.value(input);
            gradients[e] = s.needs_grad(input) ? s.grad(input) : nullptr;
        }
    }
    std::span<const float* const> expert_values() const { return {values.data(), count}; }
    std::span<float* const> expert_gradients() const { return {gradients.data(), count}; }
};

}  // namespace
}  // namespace ladon::engine

#if !defined(LADON_OPS_CUDA)
#include <fmt/format.h>

namespace ladon::engine {
namespace {

TensorShape infer_global_avg_pool(NodeInference& inference) {
    const TensorShape& in = inference.input(0);
    return {in.batch, in.channels, 1, 1};
}

bool is_gate_of(const TensorShape& gate, const TensorShape& x) {
    return gate.batch == x.batch && gate.channels == x.channels && gate.height == 1 && gate.width == 1;
}

TensorShape infer_multiply(NodeInference& inference) {
    const TensorShape &a = inference.input(0), &b = inference.input(1);
    if (a.batch == b.batch && a.channels == b.channels && a.height == b.height && a.width == b.width) return b;
    if (is_gate_of(a, b)) return b;
    if (!is_gate_of(b, a))
        inference.fail(
            fmt::format("needs two inputs of one shape, or a [N, C] gate and a [N, C, H, W] tensor; '{}' "
                        "is {} but '{}' is {}",
                        inference.input_name(0), a.str(), inference.input_name(1), b.str()));
    return a;
}

TensorShape infer_mixture(NodeInference& inference) {
    const TensorShape& gate = inference.input(0);
    const auto experts = int64_t(inference.inputs()) - 1;
    if (experts > ops::max_mixture_experts)
        inference.fail(fmt::format("takes at most {} experts, got {}", ops::max_mixture_experts, experts));
    if (gate.height != 1 || gate.width != 1 || gate.channels != experts)
        inference.fail(fmt::format("needs its first input, the gate, to be [N, E] for its E = {} experts; '{}' is {}",
                                   experts, inference.input_name(0), gate.str()));
    const TensorShape& expert = inference.input(1);
    for (std::size_t k = 1; k < inference.inputs(); ++k) {
        const TensorShape& s = inference.input(k);
        if (s.batch != gate.batch || s.channels != expert.channels || s.height != expert.height ||
            s.width != expert.width)
            inference.fail(fmt::format("needs experts of one shape, with the gate's batch; '{}' is {} but '{}' is {}",
                                       inference.input_name(1), expert.str(), inference.input_name(k), s.str()));
    }
    return expert;
}

OpCost cost_global_avg_pool(const Graph& graph, const Node& node) {
    const double in = double(graph.tensors[node.inputs[0]].shape.elements());
    const double out = double(graph.tensors[node.output].shape.elements());
    return {in, in, 4 * (in + out), 4 * (2 * in + out)};
}

OpCost cost_multiply(const Graph& graph, const Node& node) {
    const double count = double(graph.tensors[node.output].shape.elements());
    return {count, 2 * count, 12 * count, 24 * count};
}

OpCost cost_mixture(const Graph& graph, const Node& node) {
    const double count = double(graph.tensors[node.output].shape.elements());
    const double experts = double(node.inputs.size() - 1);
    const double gate = double(graph.tensors[node.inputs[0]].shape.elements());
    return {2 * experts * count, 4 * experts * count, 4 * ((experts + 1) * count + gate),
            4 * ((3 * experts + 1) * count + 2 * gate)};
}

void global_avg_pool_forward(const CpuOpStep& s) {
    cpu::global_avg_pool_forward(s.count(), s.shape(s.node.inputs[0]).height * s.shape(s.node.inputs[0]).width, s.x(),
                                 s.y());
}
void global_avg_pool_backward(const CpuOpStep& s) {
    const int input = s.node.inputs[0];
    if (s.needs_grad(input))
        cpu::global_avg_pool_backward(s.count(), s.shape(input).height * s.shape(input).width, s.grad_y(),
                                      s.grad(input));
}

void multiply_forward(const CpuOpStep& s) {
    const MultiplyLayout m = multiply_layout(s);
    cpu::multiply_forward(m.planes, m.spatial, s.value(m.a), s.value(m.b), s.y());
}
void multiply_backward(const CpuOpStep& s) {
    const MultiplyLayout m = multiply_layout(s);
    cpu::multiply_backward(m.planes, m.spatial, s.value(m.a), s.value(m.b), s.grad_y(),
                           s.needs_grad(m.a) ? s.grad(m.a) : nullptr, s.needs_grad(m.b) ? s.grad(m.b) : nullptr);
}

void mixture_forward(const CpuOpStep& s) {
    const MixtureOperands experts(s);
    const TensorShape& out = s.shape(s.node.output);
    cpu::mixture_forward(out.batch, out.per_sample(), s.x(), experts.expert_values(), s.y());
}
void mixture_backward(const CpuOpStep& s) {
    const MixtureOperands experts(s);
    const TensorShape& out = s.shape(s.node.output);
    const int gate = s.node.inputs[0];
    cpu::mixture_backward(out.batch, out.per_sample(), s.x(), experts.expert_values(), s.grad_y(),
                          s.needs_grad(gate) ? s.grad(gate) : nullptr, experts.expert_gradients());
}

}  // namespace

extern const OpDefinition global_avg_pool_op{
    .kind = OpKind::global_avg_pool,
    .name = "global_avg_pool",
    .infer = infer_global_avg_pool,
    .cost = cost_global_avg_pool,
    .cpu_forward = global_avg_pool_forward,
    .cpu_backward = global_avg_pool_backward,
};

extern const OpDefinition multiply_op{
    .kind = OpKind::multiply,
    .name = "multiply",
    .min_inputs = 2,
    .max_inputs = 2,
    .infer = infer_multiply,
    .cost = cost_multiply,
    .cpu_forward = multiply_forward,
    .cpu_backward = multiply_backward,
};

extern const OpDefinition mixture_op{
    .kind = OpKind::mixture,
    .name = "mixture",
    .min_inputs = 2,
    .max_inputs = 0,
    .infer = infer_mixture,
    .cost = cost_mixture,
    .cpu_forward = mixture_forward,
    .cpu_backward = mixture_backward,
};

}  // namespace ladon::engine

#else  // the CUDA half
#include "engine/ops/cuda_op.hpp"
#include "kernels/cuda/gating.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {
namespace {

cudaError_t global_avg_pool_forward(const CudaOpStep& s) {
    const TensorShape& in = s.shape(s.node.inputs[0]);
    return cuda::global_avg_pool_forward(s.count(), in.height * in.width, s.x(), s.y(), s.stream);
}
cudaError_t global_avg_pool_backward(const CudaOpStep& s) {
    const int input = s.node.inputs[0];
    if (!s.needs_grad(input)) return cudaSuccess;
    return cuda::global_avg_pool_backward(s.count(), s.shape(input).height * s.shape(input).width, s.grad_y(),
                                          s.grad(input), s.stream);
}

cudaError_t multiply_forward(const CudaOpStep& s) {
    const MultiplyLayout m = multiply_layout(s);
    return cuda::multiply_forward(m.planes, m.spatial, s.value(m.a), s.value(m.b), s.y(), s.stream);
}
cudaError_t multiply_backward(const CudaOpStep& s) {
    const MultiplyLayout m = multiply_layout(s);
    return cuda::multiply_backward(m.planes, m.spatial, s.value(m.a), s.value(m.b), s.grad_y(),
                                   s.needs_grad(m.a) ? s.grad(m.a) : nullptr, s.needs_grad(m.b) ? s.grad(m.b) : nullptr,
                                   s.stream);
}

cudaError_t mixture_forward(const CudaOpStep& s) {
    const MixtureOperands experts(s);
    const TensorShape& out = s.shape(s.node.output);
    return cuda::mixture_forward(out.batch, out.per_sample(), s.x(), experts.expert_values(), s.y(), s.stream);
}
cudaError_t mixture_backward(const CudaOpStep& s) {
    const MixtureOperands experts(s);
    const TensorShape& out = s.shape(s.node.output);
    const int gate = s.node.inputs[0];
    return cuda::mixture_backward(out.batch, out.per_sample(), s.x(), experts.expert_values(), s.grad_y(),
                                  s.needs_grad(gate) ? s.grad(gate) : nullptr, experts.expert_gradients(), s.stream);
}

}  // namespace

extern const CudaOpDefinition global_avg_pool_cuda{OpKind::global_avg_pool, global_avg_pool_forward,
                                                   global_avg_pool_backward};
extern const CudaOpDefinition multiply_cuda{OpKind::multiply, multiply_forward, multiply_backward};
extern const CudaOpDefinition mixture_cuda{OpKind::mixture, mixture_forward, mixture_backward};

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
#endif
