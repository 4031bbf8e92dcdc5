// Launch wrappers for gemm.cuh: the generic GEMM and the dense layer on it
// (on the tensor-core GEMM where the precision asks for it).
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/gemm.cuh"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/gemm_tensor_core.hpp"
#include "kernels/cuda/launch.hpp"

namespace ladon::cuda {
namespace {

constexpr int64_t max_grid_y = 65535;

bool valid_shape(const ops::DenseShape& shape) {
    return shape.batch >= 0 && shape.in_features >= 0 && shape.out_features >= 0;
}

}  // namespace

cudaError_t gemm_grid(const GemmArguments& g, int64_t block_m, int64_t block_n, dim3& grid) {
    grid = dim3(0, 0, 0);
    if (g.m < 0 || g.n < 0 || g.k < 0) return cudaErrorInvalidValue;
    if (g.m == 0 || g.n == 0) return cudaSuccess;
    if (g.lda < (g.transpose_a ? g.m : g.k) || g.ldb < (g.transpose_b ? g.k : g.n) || g.ldc < g.n)
        return cudaErrorInvalidValue;
    const int64_t blocks_x = (g.n + block_n - 1) / block_n, blocks_y = (g.m + block_m - 1) / block_m;
    if (blocks_y > max_grid_y || blocks_x > INT32_MAX) return cudaErrorInvalidValue;
    grid = dim3(static_cast<unsigned>(blocks_x), static_cast<unsigned>(blocks_y));
    return cudaSuccess;
}

cudaError_t gemm(const GemmArguments& g, cudaStream_t stream) {
    using namespace sgemm;
    dim3 grid;
    if (const cudaError_t error = gemm_grid(g, block_m, block_n, grid); error != cudaSuccess || grid.x == 0)
        return error;
    const dim3 block(threads_per_block);
    if (g.transpose_a)
        return g.transpose_b ? launch(sgemm_kernel<true, true>, grid, block, 0, stream, g)
                             : launch(sgemm_kernel<true, false>, grid, block, 0, stream, g);
    return g.transpose_b ? launch(sgemm_kernel<false, true>, grid, block, 0, stream, g)
                         : launch(sgemm_kernel<false, false>, grid, block, 0, stream, g);
}

// output[N, O] = act(input[N, I] · weight[O, I]^T + bias): B = weight, transposed.
cudaError_t dense_forward(const ops::DenseShape& shape, const float* input, const float* weight, const float* bias,
                          ops::Activation activation, float negative_slope, float* output, cudaStream_t stream,
                          MatmulPrecision precision, GemmScratch scratch) {
    if (!valid_shape(shape)) return cudaErrorInvalidValue;
    GemmArguments g;
    g.transpose_b = true;
    g.m = shape.batch, g.n = shape.out_features, g.k = shape.in_features;
    g.a = input, g.lda = shape.in_features;
    g.b = weight, g.ldb = shape.in_features;
    g.beta = 0.0f;
    g.c = output, g.ldc = shape.out_features;
    g.bias = bias;
    g.activation = activation, g.negative_slope = negative_slope;
    return gemm_tensor_core(g, precision, stream, MmaTiles::automatic, scratch);
}

// grad_input[N, I] += grad_output[N, O] · weight[O, I]: no transposes, beta = 1.
cudaError_t dense_backward_data(const ops::DenseShape& shape, const float* weight, const float* grad_output,
                                float* grad_input, cudaStream_t stream, MatmulPrecision precision,
                                GemmScratch scratch, bool accumulate) {
    if (!valid_shape(shape)) return cudaErrorInvalidValue;
    GemmArguments g;
    g.m = shape.batch, g.n = shape.in_features, g.k = shape.out_features;
    g.a = grad_output, g.lda = shape.out_features;
    g.b = weight, g.ldb = shape.in_features;
    g.beta = accumulate ? 1.0f : 0.0f;
    g.c = grad_input, g.ldc = shape.in_features;
    return gemm_tensor_core(g, precision, stream, MmaTiles::automatic, scratch);
}

// grad_weight[O, I] += grad_output^T[O, N] · input[N, I]: A = grad_output
// transposed, the batch is K, beta = 1. Then the bias's column sum.
cudaError_t dense_backward_filter(const ops::DenseShape& shape, const float* input, const float* grad_output,
                                  float* grad_weight, float* grad_bias, cudaStream_t stream, MatmulPrecision precision,
                                  GemmScratch scratch) {
    if (!valid_shape(shape)) return cudaErrorInvalidValue;
    GemmArguments g;
    g.transpose_a = true;
    g.m = shape.out_features, g.n = shape.in_features, g.k = shape.batch;
    g.a = grad_output, g.lda = shape.out_features;
    g.b = input, g.ldb = shape.in_features;
    g.beta = 1.0f;
    g.c = grad_weight, g.ldc = shape.in_features;
    if (const cudaError_t error = gemm_tensor_core(g, precision, stream, MmaTiles::automatic, scratch);
        error != cudaSuccess)
        return error;
    if (grad_bias == nullptr || shape.out_features == 0) return cudaSuccess;
    const int64_t blocks = (shape.out_features + sgemm::bias_columns - 1) / sgemm::bias_columns;
    if (blocks > INT32_MAX) return cudaErrorInvalidValue;
    return launch(sgemm::bias_gradient_kernel, dim3(static_cast<unsigned>(blocks)),
                  dim3(sgemm::bias_columns, sgemm::bias_row_groups), 0, stream, shape.batch, shape.out_features,
                  grad_output, grad_bias);
}

// The forward's product is [batch, out] over in, backward data's [batch, in]
// over out, backward filter's [out, in] over batch.
std::size_t dense_workspace_bytes(const ops::DenseShape& shape, MatmulPrecision precision) {
    if (precision == MatmulPrecision::fp32 || !valid_shape(shape)) return 0;
    const auto bytes = [](int64_t m, int64_t n, int64_t k) {
        return split_k_bytes(m, n, k, choose_split_k(m, n, k, MmaTiles::automatic));
    };
    return std::max({bytes(shape.batch, shape.out_features, shape.in_features),
                     bytes(shape.batch, shape.in_features, shape.out_features),
                     bytes(shape.out_features, shape.in_features, shape.batch)});
}

}  // namespace ladon::cuda
