// max_pool2d and avg_pool2d: PyTorch's nn.MaxPool2d and nn.AvgPool2d
// (count_include_pad=True); the stride defaults to the kernel.
#if !defined(LADON_OPS_CUDA)
#include "engine/ops/window.hpp"

namespace ladon::engine {
namespace {

constexpr OpField fields[] = {
    {"kernel", &LayerSpec::kernel}, {"stride", &LayerSpec::stride}, {"padding", &LayerSpec::padding}};

void resolve(LayerSpec& layer) {
    for (int d = 0; d < 2; ++d)
        if (layer.stride[d] == 0) layer.stride[d] = layer.kernel[d];
}

TensorShape infer(NodeInference& inference) {
    Node& node = inference.node();
    const LayerSpec& layer = node.spec;
    const TensorShape& in = inference.input(0);
    auto& p = node.pool;
    p = {in.batch,        in.channels,     in.height,       in.width,         layer.kernel[0],
         layer.kernel[1], layer.stride[0], layer.stride[1], layer.padding[0], layer.padding[1]};
    check_window(inference, in,
                 {p.kernel_height, p.kernel_width, p.stride_height, p.stride_width, p.pad_height, p.pad_width}, true);
    return {in.batch, in.channels, p.out_height(), p.out_width()};
}

OpCost cost(const Graph&, const Node& node) {
    const auto& p = node.pool;
    const double window = double(p.output_size()) * double(p.kernel_height * p.kernel_width);
    const double bytes = double(p.input_size() + p.output_size()) * 4;
    return {window, double(p.output_size()), bytes, bytes};
}

int64_t argmax_count(const Node& node) { return node.pool.output_size(); }

void max_forward(const CpuOpStep& s) { cpu::max_pool2d_forward(s.node.pool, s.x(), s.y(), s.argmax()); }
void max_backward(const CpuOpStep& s) {
    if (s.needs_grad(s.node.inputs[0]))
        cpu::max_pool2d_backward(s.node.pool, s.grad_y(), s.argmax(), s.grad(s.node.inputs[0]));
}
void avg_forward(const CpuOpStep& s) { cpu::avg_pool2d_forward(s.node.pool, s.x(), s.y()); }
void avg_backward(const CpuOpStep& s) {
    if (s.needs_grad(s.node.inputs[0])) cpu::avg_pool2d_backward(s.node.pool, s.grad_y(), s.grad(s.node.inputs[0]));
}

}  // namespace

extern const OpDefinition max_pool2d_op{
    .kind = OpKind::max_pool2d,
    .name = "max_pool2d",
    .fields = fields,
    .resolve = resolve,
    .infer = infer,
    .cost = cost,
    .argmax_count = argmax_count,
    .cpu_forward = max_forward,
    .cpu_backward = max_backward,
};

extern const OpDefinition avg_pool2d_op{
    .kind = OpKind::avg_pool2d,
    .name = "avg_pool2d",
    .fields = fields,
    .resolve = resolve,
    .infer = infer,
    .cost = cost,
    .cpu_forward = avg_forward,
    .cpu_backward = avg_backward,
};

}  // namespace ladon::engine

#else  // the CUDA half
#include "engine/ops/cuda_op.hpp"
#include "kernels/cuda/pool.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {
namespace {

cudaError_t max_forward(const CudaOpStep& s) {
    return cuda::max_pool2d_forward(s.node.pool, s.x(), s.y(), s.argmax(), s.stream);
}
cudaError_t max_backward(const CudaOpStep& s) {
    if (!s.needs_grad(s.node.inputs[0])) return cudaSuccess;
    return cuda::max_pool2d_backward(s.node.pool, s.grad_y(), s.argmax(), s.grad(s.node.inputs[0]), s.stream,
                                     !s.stores_gradient(0));
}
cudaError_t avg_forward(const CudaOpStep& s) { return cuda::avg_pool2d_forward(s.node.pool, s.x(), s.y(), s.stream); }
cudaError_t avg_backward(const CudaOpStep& s) {
    if (!s.needs_grad(s.node.inputs[0])) return cudaSuccess;
    return cuda::avg_pool2d_backward(s.node.pool, s.grad_y(), s.grad(s.node.inputs[0]), s.stream,
                                     !s.stores_gradient(0));
}

}  // namespace

extern const CudaOpDefinition max_pool2d_cuda{OpKind::max_pool2d, max_forward, max_backward, nullptr, true};
extern const CudaOpDefinition avg_pool2d_cuda{OpKind::avg_pool2d, avg_forward, avg_backward, nullptr, true};

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
#endif
