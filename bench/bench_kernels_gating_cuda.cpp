// The gating ops' rows of bench_kernels on the GPU (see bench_kernels.cpp for
// how a row is measured), beside what a framework's cuDNN path runs for them:
//   softmax           cudnnSoftmaxForward/Backward, ACCURATE, MODE_CHANNEL
//   global_avg_pool   cudnnPooling, average over the whole map
//   multiply          cudnnOpTensor MUL with the [N, C, 1, 1] gate broadcast;
//                     backward: the same for grad_x, then the gate's gradient
//                     as a product (OpTensor) summed over H and W (ReduceTensor)
//   mixture           no cuDNN counterpart: the copy baseline
// Every vendor backward accumulates (beta = 1), as ladon's contract says.
#include <span>

#include "bench/bench_kernels_cuda.hpp"
#include "kernels/cuda/gating.hpp"
#include "kernels/cuda/softmax.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace ladon::bench {
namespace {

using OpTensorDescriptor = Owned<cudnnOpTensorDescriptor_t, cudnnDestroyOpTensorDescriptor>;
using ReduceTensorDescriptor = Owned<cudnnReduceTensorDescriptor_t, cudnnDestroyReduceTensorDescriptor>;

const float one = 1.0f, zero = 0.0f;

void softmax_vendor(Prepared& row, cudnnHandle_t handle, cudnnTensorDescriptor_t x_desc, const float* x, float* y,
                    const float* gy, float* gx, bool backward) {
    row.label = "vendor: cudnnSoftmax, ACCURATE, MODE_CHANNEL";
    if (!backward) {
        row.vendor = [=] {
            LADON_BENCH_CHECK(cudnnSoftmaxForward(handle, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL, &one,
                                                  x_desc, x, &zero, x_desc, y));
        };
        return;
    }
    row.vendor = [=] {
        LADON_BENCH_CHECK(cudnnSoftmaxBackward(handle, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL, &one, x_desc,
                                               y, x_desc, gy, &one, x_desc, gx));
    };
}

void average_vendor(Prepared& row, cudnnHandle_t handle, const FeatureMap& map, cudnnTensorDescriptor_t x_desc,
                    cudnnTensorDescriptor_t gate_desc, const float* x, float* means, const float* gate_gy, float* gx,
                    bool backward) {
    cudnnPoolingDescriptor_t raw = nullptr;
    LADON_BENCH_CHECK(cudnnCreatePoolingDescriptor(&raw));
    const cudnnPoolingDescriptor_t pool = row.keep(PoolingDescriptor(raw)).get();
    const int size = int(map.size);
    LADON_BENCH_CHECK(cudnnSetPooling2dDescriptor(pool, CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING,
                                                  CUDNN_PROPAGATE_NAN, size, size, 0, 0, size, size));
    row.label = "vendor: cudnnPooling, average over the whole map";
    if (!backward) {
        row.vendor = [=] {
            LADON_BENCH_CHECK(cudnnPoolingForward(handle, pool, &one, x_desc, x, &zero, gate_desc, means));
        };
        return;
    }
    LADON_BENCH_CHECK(cudnnPoolingForward(handle, pool, &one, x_desc, x, &zero, gate_desc, means));
    row.vendor = [=] {
        LADON_BENCH_CHECK(
            cudnnPoolingBackward(handle, pool, &one, gate_desc, means, gate_desc, gate_gy, x_desc, x, &one, x_desc, gx));
    };
}

void multiply_vendor(Prepared& row, const CudaContext* cuda, int64_t count, cudnnTensorDescriptor_t x_desc,
                     cudnnTensorDescriptor_t gate_desc, const float* gate, const float* x, float* y, const float* gy,
                     float* gx, float* gate_gx, bool backward) {
    const cudnnHandle_t handle = cuda->cudnn();
    cudnnOpTensorDescriptor_t raw = nullptr;
    LADON_BENCH_CHECK(cudnnCreateOpTensorDescriptor(&raw));
    const cudnnOpTensorDescriptor_t mul = row.keep(OpTensorDescriptor(raw)).get();
    LADON_BENCH_CHECK(cudnnSetOpTensorDescriptor(mul, CUDNN_OP_TENSOR_MUL, CUDNN_DATA_FLOAT, CUDNN_PROPAGATE_NAN));
    if (!backward) {
        row.label = "vendor: cudnnOpTensor MUL, the gate broadcast";
        row.vendor = [=] {
            LADON_BENCH_CHECK(cudnnOpTensor(handle, mul, &one, x_desc, x, &one, gate_desc, gate, &zero, x_desc, y));
        };
        return;
    }
    cudnnReduceTensorDescriptor_t reduce_raw = nullptr;
    LADON_BENCH_CHECK(cudnnCreateReduceTensorDescriptor(&reduce_raw));
    const cudnnReduceTensorDescriptor_t sum = row.keep(ReduceTensorDescriptor(reduce_raw)).get();
    LADON_BENCH_CHECK(cudnnSetReduceTensorDescriptor(sum, CUDNN_REDUCE_TENSOR_ADD, CUDNN_DATA_FLOAT,
                                                     CUDNN_PROPAGATE_NAN, CUDNN_REDUCE_TENSOR_NO_INDICES,
                                                     CUDNN_32BIT_INDICES));
    std::size_t workspace_bytes = 0;
    LADON_BENCH_CHECK(cudnnGetReductionWorkspaceSize(handle, sum, x_desc, gate_desc, &workspace_bytes));
    void* workspace = row.keep(zeros(std::max<std::size_t>(workspace_bytes, 16))).get();
    float* product = row.keep(zero_floats(count)).floats();
    row.label = "vendor: cudnnOpTensor MUL (grad_x), then MUL and cudnnReduceTensor ADD (the gate's gradient)";
    row.vendor = [=] {
        LADON_BENCH_CHECK(cudnnOpTensor(handle, mul, &one, x_desc, gy, &one, gate_desc, gate, &one, x_desc, gx));
        LADON_BENCH_CHECK(cudnnOpTensor(handle, mul, &one, x_desc, gy, &one, x_desc, x, &zero, x_desc, product));
        LADON_BENCH_CHECK(cudnnReduceTensor(handle, sum, nullptr, 0, workspace, workspace_bytes, &one, x_desc, product,
                                            &one, gate_desc, gate_gx));
    };
}

}  // namespace

Prepared cuda_gating_row(const CudaContext* cuda, const FeatureMap& map, int64_t batch, GatingPass pass) {
    const cudaStream_t stream = cuda->stream();
    const cudnnHandle_t handle = cuda->cudnn();
    Prepared row;
    row.work.bytes = gating_bytes(map, batch, pass);
    const int64_t channels = map.channels, planes = batch * channels, spatial = map.size * map.size;
    const int64_t count = planes * spatial;
    const float* x = row.keep(upload(random_floats(count, 1))).floats();
    const float* gy = row.keep(upload(random_floats(count, 3))).floats();
    const float* gate = row.keep(upload(random_floats(planes, 4))).floats();
    const float* gate_gy = row.keep(upload(random_floats(planes, 5))).floats();
    float* y = row.keep(zero_floats(count)).floats();
    float* gx = row.keep(zero_floats(count)).floats();
    float* gate_gx = row.keep(zero_floats(planes)).floats();
    const cudnnTensorDescriptor_t x_desc = row.keep(tensor_descriptor(batch, channels, map.size, map.size)).get();
    const cudnnTensorDescriptor_t gate_desc = row.keep(tensor_descriptor(batch, channels, 1, 1)).get();
    switch (pass) {
        case GatingPass::softmax_forward:
            row.ladon = [=] { LADON_BENCH_CHECK(ladon::cuda::softmax_forward(batch, channels, spatial, x, y, stream)); };
            softmax_vendor(row, handle, x_desc, x, y, gy, gx, false);
            break;
        case GatingPass::softmax_backward:
            LADON_BENCH_CHECK(ladon::cuda::softmax_forward(batch, channels, spatial, x, y, stream));  // y for both
            row.ladon = [=] {
                LADON_BENCH_CHECK(ladon::cuda::softmax_backward(batch, channels, spatial, y, gy, gx, stream));
            };
            softmax_vendor(row, handle, x_desc, x, y, gy, gx, true);
            break;
        case GatingPass::global_avg_pool_forward:
        case GatingPass::global_avg_pool_backward: {
            const bool backward = pass == GatingPass::global_avg_pool_backward;
            if (backward)
                row.ladon = [=] {
                    LADON_BENCH_CHECK(ladon::cuda::global_avg_pool_backward(planes, spatial, gate_gy, gx, stream));
                };
            else
                row.ladon = [=] {
                    LADON_BENCH_CHECK(ladon::cuda::global_avg_pool_forward(planes, spatial, x, gate_gx, stream));
                };
            average_vendor(row, handle, map, x_desc, gate_desc, x, gate_gx, gate_gy, gx, backward);
            break;
        }
        case GatingPass::multiply_forward:
            row.ladon = [=] { LADON_BENCH_CHECK(ladon::cuda::multiply_forward(planes, spatial, gate, x, y, stream)); };
            multiply_vendor(row, cuda, count, x_desc, gate_desc, gate, x, y, gy, gx, gate_gx, false);
            break;
        case GatingPass::multiply_backward:
            row.ladon = [=] {
                LADON_BENCH_CHECK(ladon::cuda::multiply_backward(planes, spatial, gate, x, gy, gate_gx, gx, stream));
            };
            multiply_vendor(row, cuda, count, x_desc, gate_desc, gate, x, y, gy, gx, gate_gx, true);
            break;
    }
    LADON_BENCH_CHECK(cudaStreamSynchronize(stream));
    return row;
}

Prepared cuda_mixture_row(const CudaContext* cuda, const MixtureLayer& layer, int64_t batch, MixturePass pass) {
    const cudaStream_t stream = cuda->stream();
    Prepared row;
    row.work.bytes = mixture_bytes(layer, batch, pass);
    const int64_t count = batch * layer.features;
    const float* gate = row.keep(upload(random_floats(batch * layer.experts, 1, 0.0f, 1.0f))).floats();
    const float* gy = row.keep(upload(random_floats(count, 2))).floats();
    float* y = row.keep(zero_floats(count)).floats();
    float* grad_gate = row.keep(zero_floats(batch * layer.experts)).floats();
    auto& experts = row.keep(std::vector<const float*>());
    auto& grads = row.keep(std::vector<float*>());
    for (int64_t e = 0; e < layer.experts; ++e) {
        experts.push_back(row.keep(upload(random_floats(count, 10 + uint64_t(e)))).floats());
        grads.push_back(row.keep(zero_floats(count)).floats());
    }
    const std::span<const float* const> values = experts;
    const std::span<float* const> gradients = grads;
    if (pass == MixturePass::forward)
        row.ladon = [=] {
            LADON_BENCH_CHECK(ladon::cuda::mixture_forward(batch, layer.features, gate, values, y, stream));
        };
    else
        row.ladon = [=] {
            LADON_BENCH_CHECK(
                ladon::cuda::mixture_backward(batch, layer.features, gate, values, gy, grad_gate, gradients, stream));
        };
    row.vendor = copy_baseline(row, cuda, row.work.bytes);
    return row;
}

}  // namespace ladon::bench

#pragma GCC diagnostic pop
