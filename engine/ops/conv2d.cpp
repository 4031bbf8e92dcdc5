// conv2d: NCHW input, OIHW weight, optional bias; PyTorch's nn.Conv2d.
#if !defined(LADON_OPS_CUDA)
#include "engine/ops/window.hpp"

namespace ladon::engine {
namespace {

constexpr OpField fields[] = {
    {"out_channels", &LayerSpec::out_channels}, {"kernel", &LayerSpec::kernel}, {"stride", &LayerSpec::stride},
    {"padding", &LayerSpec::padding},           {"bias", &LayerSpec::bias},
};

void resolve(LayerSpec& layer) {
    for (auto& stride : layer.stride)
        if (stride == 0) stride = 1;
}

TensorShape infer(NodeInference& inference) {
    Node& node = inference.node();
    const LayerSpec& layer = node.spec;
    const TensorShape& in = inference.input(0);
    if (layer.out_channels <= 0)
        inference.fail(fmt::format("needs out_channels > 0, got {}", layer.out_channels));
    auto& c = node.conv;
    c = {in.batch,          in.channels,      in.height,        in.width,         layer.out_channels, layer.kernel[0],
         layer.kernel[1],   layer.stride[0],  layer.stride[1],  layer.padding[0], layer.padding[1]};
    check_window(inference, in,
                 {c.kernel_height, c.kernel_width, c.stride_height, c.stride_width, c.pad_height, c.pad_width}, false);
    const int64_t fan_in = c.in_channels * c.kernel_height * c.kernel_width;
    node.weight = inference.add_parameter("weight", {c.out_channels, c.in_channels, c.kernel_height, c.kernel_width},
                                          BufferSlice::Init::uniform_fan_in, fan_in);
    if (layer.bias)
        node.bias = inference.add_parameter("bias", {c.out_channels}, BufferSlice::Init::uniform_fan_in, fan_in);
    return {in.batch, c.out_channels, c.out_height(), c.out_width()};
}

OpCost cost(const Graph&, const Node& node) {
    const auto& c = node.conv;
    const double macs = double(c.output_size()) * double(c.in_channels * c.kernel_height * c.kernel_width);
    const double operands = double(c.input_size() + c.weight_size() + c.output_size()) * 4;
    return {2 * macs, 4 * macs, operands, 2 * operands};
}

void cpu_forward(const CpuOpStep& s) {
    const Node& n = s.node;
    cpu::conv2d_forward(n.conv, s.x(), s.param(n.weight), s.param(n.bias), s.y(), s.buffers.workspace);
}

void cpu_backward(const CpuOpStep& s) {
    const Node& n = s.node;
    cpu::conv2d_backward_filter(n.conv, s.x(), s.grad_y(), s.param_grad(n.weight), s.param_grad(n.bias),
                                s.buffers.workspace);
    if (s.needs_grad(n.inputs[0]))
        cpu::conv2d_backward_data(n.conv, s.param(n.weight), s.grad_y(), s.grad(n.inputs[0]), s.buffers.workspace);
}

std::size_t cpu_workspace(const Node& node, int threads) { return cpu::conv2d_workspace_floats(node.conv, threads); }

}  // namespace

extern const OpDefinition conv2d_op{
    .kind = OpKind::conv2d,
    .name = "conv2d",
    .fields = fields,
    .resolve = resolve,
    .infer = infer,
    .cost = cost,
    .takes_epilogue = [](ops::Activation) { return true; },
    .cpu_forward = cpu_forward,
    .cpu_backward = cpu_backward,
    .cpu_workspace_floats = cpu_workspace,
};

}  // namespace ladon::engine

#else  // the CUDA half
#include "engine/ops/cuda_op.hpp"
#include "kernels/cuda/conv2d.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {
namespace {

cudaError_t forward(const CudaOpStep& s) {
    const Node& n = s.node;
    return cuda::conv2d_forward(n.conv, s.x(), s.param(n.weight), s.param(n.bias), s.epilogue, s.epilogue_slope,
                                s.epilogue_output ? s.epilogue_output : s.y(), s.stream, s.matmul);
}

cudaError_t backward(const CudaOpStep& s) {
    const Node& n = s.node;
    cudaError_t e = cuda::conv2d_backward_filter(n.conv, s.x(), s.grad_y(), s.param_grad(n.weight),
                                                 s.param_grad(n.bias), s.buffers.workspace, s.stream, s.matmul);
    if (e == cudaSuccess && s.needs_grad(n.inputs[0]))
        e = cuda::conv2d_backward_data(n.conv, s.param(n.weight), s.grad_y(), s.grad(n.inputs[0]), s.stream,
                                       s.matmul, !s.stores_gradient(0));
    return e;
}

std::size_t workspace(const Node& node, cuda::MatmulPrecision) {
    return cuda::conv2d_backward_filter_workspace_bytes(node.conv);
}

}  // namespace

extern const CudaOpDefinition conv2d_cuda{OpKind::conv2d, forward, backward, workspace, true};

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
#endif
