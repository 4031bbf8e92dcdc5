// add (the elementwise sum of two or more inputs of one shape) and concat
// (along channels; the inputs agree on N, H and W): the ops that join
// branches of the graph.
#if !defined(LADON_OPS_CUDA)
#include <fmt/format.h>

#include "engine/ops/op.hpp"

namespace ladon::engine {
namespace {

TensorShape infer_add(NodeInference& inference) {
    const TensorShape& in = inference.input(0);
    for (std::size_t k = 1; k < inference.inputs(); ++k) {
        const TensorShape& s = inference.input(k);
        if (s.channels != in.channels || s.height != in.height || s.width != in.width)
            inference.fail(fmt::format("needs inputs of one shape; '{}' is {} but '{}' is {}", inference.input_name(0),
                                       in.str(), inference.input_name(k), s.str()));
    }
    return in;
}

TensorShape infer_concat(NodeInference& inference) {
    TensorShape out = inference.input(0);
    out.channels = 0;
    for (std::size_t k = 0; k < inference.inputs(); ++k) {
        const TensorShape& s = inference.input(k);
        if (s.height != out.height || s.width != out.width)
            inference.fail(fmt::format(
                "concatenates channels, so its inputs need equal height and width; '{}' is {} but '{}' is {}",
                inference.input_name(0), inference.input(0).str(), inference.input_name(k), s.str()));
        out.channels += s.channels;
    }
    return out;
}

OpCost cost(const Graph& graph, const Node& node) {
    const double count = double(graph.tensors[node.output].shape.elements());
    const double inputs = double(node.inputs.size());
    const bool add = node.spec.op == OpKind::add;
    return {add ? (inputs - 1) * count : 0.0, add ? inputs * count : 0.0, 8 * count, 8 * count};
}

void add_forward(const CpuOpStep& s) {
    const auto& inputs = s.node.inputs;
    cpu::add_forward(s.count(), s.x(), s.value(inputs[1]), s.y());
    for (std::size_t k = 2; k < inputs.size(); ++k) cpu::accumulate(s.count(), s.value(inputs[k]), s.y());
}

void add_backward(const CpuOpStep& s) {
    for (int input : s.node.inputs)
        if (s.needs_grad(input)) cpu::accumulate(s.count(), s.grad_y(), s.grad(input));
}

void concat_forward(const CpuOpStep& s) {
    const TensorShape& out = s.shape(s.node.output);
    int64_t offset = 0;
    for (int input : s.node.inputs) {
        const TensorShape& in = s.shape(input);
        cpu::concat_forward(out.batch, out.height * out.width, in.channels, offset, out.channels, s.value(input),
                            s.y());
        offset += in.channels;
    }
}

void concat_backward(const CpuOpStep& s) {
    const TensorShape& out = s.shape(s.node.output);
    int64_t offset = 0;
    for (int input : s.node.inputs) {
        const TensorShape& in = s.shape(input);
        if (s.needs_grad(input))
            cpu::concat_backward(out.batch, out.height * out.width, in.channels, offset, out.channels, s.grad_y(),
                                 s.grad(input));
        offset += in.channels;
    }
}

}  // namespace

extern const OpDefinition add_op{
    .kind = OpKind::add,
    .name = "add",
    .min_inputs = 2,
    .max_inputs = 0,
    .infer = infer_add,
    .cost = cost,
    .takes_epilogue = [](ops::Activation a) { return a == ops::Activation::relu; },
    .cpu_forward = add_forward,
    .cpu_backward = add_backward,
};

extern const OpDefinition concat_op{
    .kind = OpKind::concat,
    .name = "concat",
    .min_inputs = 2,
    .max_inputs = 0,
    .infer = infer_concat,
    .cost = cost,
    .cpu_forward = concat_forward,
    .cpu_backward = concat_backward,
};

}  // namespace ladon::engine

#else  // the CUDA half
#include "engine/ops/cuda_op.hpp"
#include "kernels/cuda/elementwise.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {
namespace {

// A following ReLU (engine/fusion.hpp) is applied by the last kernel, to
// the ReLU's output; its backward then reads the sign from that output.
cudaError_t add_forward(const CudaOpStep& s) {
    const auto& inputs = s.node.inputs;
    const bool relu = s.epilogue == ops::Activation::relu;
    float* y = relu ? s.epilogue_output : s.y();
    const std::size_t last = inputs.size() - 1;
    cudaError_t e = cuda::add_forward(s.count(), s.x(), s.value(inputs[1]), y, s.stream, relu && last == 1);
    for (std::size_t k = 2; k < inputs.size() && e == cudaSuccess; ++k)
        e = cuda::accumulate(s.count(), s.value(inputs[k]), y, s.stream, relu && k == last);
    return e;
}

// The first write of an input's gradient is a copy of grad_y, later ones add.
cudaError_t add_backward(const CudaOpStep& s) {
    cudaError_t e = cudaSuccess;
    const auto& inputs = s.node.inputs;
    for (std::size_t k = 0; k < inputs.size() && e == cudaSuccess; ++k) {
        if (!s.needs_grad(inputs[k])) continue;
        e = s.stores_gradient(k) ? cudaMemcpyAsync(s.grad(inputs[k]), s.grad_y(), std::size_t(s.count()) * sizeof(float),
                                                   cudaMemcpyDeviceToDevice, s.stream)
                                 : cuda::accumulate(s.count(), s.grad_y(), s.grad(inputs[k]), s.stream);
    }
    return e;
}

cudaError_t concat_forward(const CudaOpStep& s) {
    const TensorShape& out = s.shape(s.node.output);
    int64_t offset = 0;
    cudaError_t e = cudaSuccess;
    for (int input : s.node.inputs) {
        const TensorShape& in = s.shape(input);
        if (e == cudaSuccess)
            e = cuda::concat_forward(out.batch, out.height * out.width, in.channels, offset, out.channels,
                                     s.value(input), s.y(), s.stream);
        offset += in.channels;
    }
    return e;
}

cudaError_t concat_backward(const CudaOpStep& s) {
    const TensorShape& out = s.shape(s.node.output);
    int64_t offset = 0;
    cudaError_t e = cudaSuccess;
    for (int input : s.node.inputs) {
        const TensorShape& in = s.shape(input);
        if (e == cudaSuccess && s.needs_grad(input))
            e = cuda::concat_backward(out.batch, out.height * out.width, in.channels, offset, out.channels,
                                      s.grad_y(), s.grad(input), s.stream);
        offset += in.channels;
    }
    return e;
}

}  // namespace

extern const CudaOpDefinition add_cuda{OpKind::add, add_forward, add_backward, nullptr, true};
extern const CudaOpDefinition concat_cuda{OpKind::concat, concat_forward, concat_backward};

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
#endif
