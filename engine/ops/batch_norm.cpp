// batch_norm: per-channel batch statistics in training (optionally summed
// over the processes of data parallelism), running statistics in inference;
// PyTorch's nn.BatchNorm2d (nn.BatchNorm1d after a dense layer).
#if !defined(LADON_OPS_CUDA)
#include <fmt/format.h>

#include <algorithm>

#include "engine/ops/op.hpp"

namespace ladon::engine {
namespace {

constexpr OpField fields[] = {{"epsilon", &LayerSpec::epsilon}, {"momentum", &LayerSpec::momentum}};

TensorShape infer(NodeInference& inference) {
    Node& node = inference.node();
    const LayerSpec& layer = node.spec;
    const TensorShape& in = inference.input(0);
    if (!(layer.epsilon > 0.0f) || !(layer.momentum >= 0.0f && layer.momentum <= 1.0f))
        inference.fail("needs epsilon > 0 and momentum in [0, 1]");
    if (in.batch * in.height * in.width < 2)
        inference.fail(fmt::format("needs more than one value per channel to take batch statistics; its input is {} "
                                   "(use a batch size above 1)",
                                   in.str()));
    node.batch_norm = {in.batch, in.channels, in.height * in.width, layer.epsilon, layer.momentum};
    node.weight = inference.add_parameter("weight", {in.channels}, BufferSlice::Init::ones, 1);
    node.bias = inference.add_parameter("bias", {in.channels}, BufferSlice::Init::zeros, 1);
    node.running_mean = inference.add_state("running_mean", in.channels, BufferSlice::Init::zeros);
    node.running_var = inference.add_state("running_var", in.channels, BufferSlice::Init::ones);
    return in;
}

OpCost cost(const Graph& graph, const Node& node) {
    const double count = double(graph.tensors[node.output].shape.elements());
    return {8 * count, 12 * count, 12 * count, 20 * count};  // two passes over x forward, three backward
}

int64_t saved_count(const Node& node) { return 2 * node.batch_norm.channels; }  // mean, inverse std

// Each collective carries this rank's count of values per channel after the
// sums, so the total count comes out of the same sum (ranks may hold unequal
// batches) and is exact in a double up to 2^53.
void forward_synchronised(const CpuOpStep& s) {
    const Node& node = s.node;
    const ops::BatchNormShape& shape = node.batch_norm;
    const int64_t channels = shape.channels;
    double* sums = s.batch_norm_sums;
    double* squared_deviations = sums + channels + 1;
    cpu::batch_norm_forward_sums(shape, s.x(), sums);
    sums[channels] = double(shape.batch * shape.spatial);
    (*s.batch_norm_sync)(sums, channels + 1);
    const int64_t count = int64_t(sums[channels]);
    cpu::batch_norm_forward_squared_deviations(shape, count, s.x(), sums, squared_deviations);
    (*s.batch_norm_sync)(squared_deviations, channels);
    float* saved = s.saved();
    cpu::batch_norm_forward_apply(shape, count, s.x(), s.param(node.weight), s.param(node.bias), sums,
                                  squared_deviations, s.y(), saved, saved + channels, s.state(node.running_mean),
                                  s.state(node.running_var));
}

void backward_synchronised(const CpuOpStep& s) {
    const Node& node = s.node;
    const ops::BatchNormShape& shape = node.batch_norm;
    const int64_t sums_count = 3 * shape.channels;
    const float* saved = s.saved();
    double* local = s.batch_norm_sums;
    double* total = local + sums_count + 1;
    cpu::batch_norm_backward_sums(shape, s.x(), s.grad_y(), saved, local);
    local[sums_count] = double(shape.batch * shape.spatial);
    std::copy(local, local + sums_count + 1, total);
    (*s.batch_norm_sync)(total, sums_count + 1);
    // d gamma and d beta take this rank's sums: they are averaged over the
    // ranks with every other parameter gradient.
    cpu::batch_norm_backward_apply(shape, int64_t(total[sums_count]), s.x(), s.grad_y(), s.param(node.weight), saved,
                                   saved + shape.channels, local, total, s.grad(node.inputs[0]),
                                   s.param_grad(node.weight), s.param_grad(node.bias));
}

bool synchronised(const CpuOpStep& s) { return s.batch_norm_sync != nullptr && *s.batch_norm_sync; }

void cpu_forward(const CpuOpStep& s) {
    const Node& node = s.node;
    if (s.training && synchronised(s)) return forward_synchronised(s);
    if (s.training) {
        cpu::batch_norm_forward_training(node.batch_norm, s.x(), s.param(node.weight), s.param(node.bias), s.y(),
                                         s.saved(), s.saved() + node.batch_norm.channels, s.state(node.running_mean),
                                         s.state(node.running_var));
    } else {
        cpu::batch_norm_forward_inference(node.batch_norm, s.x(), s.param(node.weight), s.param(node.bias),
                                          s.state(node.running_mean), s.state(node.running_var), s.y());
    }
}

void cpu_backward(const CpuOpStep& s) {
    if (synchronised(s)) return backward_synchronised(s);
    const Node& node = s.node;
    // On the model input grad_x lands in the input's (unused) slot.
    cpu::batch_norm_backward(node.batch_norm, s.x(), s.grad_y(), s.param(node.weight), s.saved(),
                             s.saved() + node.batch_norm.channels, s.grad(node.inputs[0]), s.param_grad(node.weight),
                             s.param_grad(node.bias));
}

}  // namespace

extern const OpDefinition batch_norm_op{
    .kind = OpKind::batch_norm,
    .name = "batch_norm",
    .fields = fields,
    .infer = infer,
    .cost = cost,
    .saved_count = saved_count,
    .takes_epilogue = [](ops::Activation a) { return a == ops::Activation::relu; },
    .cpu_forward = cpu_forward,
    .cpu_backward = cpu_backward,
};

}  // namespace ladon::engine

#else  // the CUDA half
#include "engine/ops/cuda_op.hpp"
#include "kernels/cuda/batch_norm.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {
namespace {

// A following ReLU (engine/fusion.hpp) is applied as the output is written,
// to the ReLU's output; backward below then runs the ReLU's backward too.
cudaError_t forward(const CudaOpStep& s) {
    const Node& node = s.node;
    const bool relu = s.epilogue == ops::Activation::relu;
    float* y = relu ? s.epilogue_output : s.y();
    if (!s.training)
        return cuda::batch_norm_forward_inference(node.batch_norm, s.x(), s.param(node.weight), s.param(node.bias),
                                                  s.state(node.running_mean), s.state(node.running_var), y, s.stream,
                                                  relu);
    return cuda::batch_norm_forward_training(node.batch_norm, s.x(), s.param(node.weight), s.param(node.bias), y,
                                             s.saved(), s.saved() + node.batch_norm.channels,
                                             s.state(node.running_mean), s.state(node.running_var),
                                             s.buffers.workspace, s.stream, relu);
}

// With a fused ReLU, backward reads the ReLU's output and output gradient
// itself (the ReLU's own backward does nothing): one pass fewer.
cudaError_t backward(const CudaOpStep& s) {
    const Node& node = s.node;
    const bool through_relu = s.epilogue == ops::Activation::relu && s.epilogue_gradient != nullptr;
    // Its kernels always write grad_x: on the model input, whose slot nothing
    // reads, they store, so nothing builds up there from step to step.
    const cuda::BatchNormBackwardOptions options{.relu_output = through_relu ? s.epilogue_output : nullptr,
                                                 .accumulate = s.needs_grad(node.inputs[0]) && !s.stores_gradient(0)};
    return cuda::batch_norm_backward(node.batch_norm, s.x(), through_relu ? s.epilogue_gradient : s.grad_y(),
                                     s.param(node.weight), s.saved(), s.saved() + node.batch_norm.channels,
                                     s.grad(node.inputs[0]), s.param_grad(node.weight), s.param_grad(node.bias),
                                     s.buffers.workspace, s.stream, options);
}

std::size_t workspace(const Node& node, cuda::MatmulPrecision) {
    return cuda::batch_norm_workspace_bytes(node.batch_norm);
}

}  // namespace

extern const CudaOpDefinition batch_norm_cuda{OpKind::batch_norm, forward, backward, workspace, true, true};

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
#endif
