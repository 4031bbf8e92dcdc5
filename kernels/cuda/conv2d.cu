// Launch wrappers for conv2d as implicit GEMM (device code in conv2d.cuh).
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/channel_reduce.hpp"
#include "kernels/cuda/conv2d.cuh"
#include "kernels/cuda/conv2d.hpp"
#include "kernels/cuda/conv2d_tensor_core.hpp"
#include "kernels/cuda/device.hpp"
#include "kernels/cuda/launch.hpp"

namespace ladon::cuda {
namespace {

using conv2d_detail::ChunkedRows;
using conv2d_detail::ConvGeometry;

bool is_valid(const ops::Conv2dShape& s) {
    return s.batch >= 0 && s.in_channels > 0 && s.in_height > 0 && s.in_width > 0 && s.out_channels > 0 &&
           s.kernel_height > 0 && s.kernel_width > 0 && s.stride_height > 0 && s.stride_width > 0 &&
           s.pad_height >= 0 && s.pad_width >= 0 && s.out_height() >= 1 && s.out_width() >= 1 &&
           // The gathers decode a weight column (ci, r, s) or (co, r, s) in 32 bits.
           s.in_channels * s.kernel_height * s.kernel_width <= INT32_MAX &&
           s.out_channels * s.kernel_height * s.kernel_width <= INT32_MAX;
}

ConvGeometry geometry_of(const ops::Conv2dShape& s) {
    return {s.batch,        s.in_channels, s.in_height,     s.in_width,     s.out_channels,
            s.out_height(), s.out_width(), s.kernel_height, s.kernel_width, s.stride_height,
            s.stride_width, s.pad_height,  s.pad_width};
}

ChunkedRows chunked_rows(const float* data, int64_t rows, int64_t columns, int64_t chunk, int64_t chunk_stride,
                         int64_t row_stride) {
    const bool vectorised = chunk % 4 == 0 && chunk_stride % 4 == 0 && row_stride % 4 == 0 &&
                            reinterpret_cast<std::uintptr_t>(data) % 16 == 0;
    return {data, rows, columns, chunk, chunk_stride, row_stride, vectorised};
}

// One block per 64x64 tile of C[m_count, n_count]; false if the grid would
// pass CUDA's limits (2^31 - 1 blocks in x, 65535 in y).
bool tile_grid(int64_t m_count, int64_t n_count, dim3& grid) {
    const int64_t x = (n_count + conv2d_detail::tile_n - 1) / conv2d_detail::tile_n;
    const int64_t y = (m_count + conv2d_detail::tile_m - 1) / conv2d_detail::tile_m;
    if (x > 2147483647 || y > 65535) return false;
    grid = dim3(static_cast<unsigned>(x), static_cast<unsigned>(y));
    return true;
}

// Backward filter parallelises over grad_weight's 64x64 tiles; a layer with
// few tiles (few channels, large images) would leave most of the GPU idle
// while a handful of blocks walk batch * positions. Such a reduction is split
// into runs of at least min_split_length (whole k-tiles) until there are
// about target_blocks blocks: two per SM of an H100/H200 (132 SMs; ~90
// registers x 256 threads lets two blocks share one). The split depends only
// on the shape, so the summation order, and the result, are fixed.
constexpr int64_t target_blocks = 264;
constexpr int64_t min_split_length = 32 * conv2d_detail::tile_k;

struct FilterSplit {
    int64_t splits;  // runs of the reduction, >= 1
    int64_t length;  // elements of the reduction per run, a multiple of tile_k
};

FilterSplit filter_split(const ops::Conv2dShape& s) {
    const int64_t reduction = s.batch * s.out_height() * s.out_width();
    const int64_t columns = s.in_channels * s.kernel_height * s.kernel_width;
    const int64_t tiles = ((s.out_channels + conv2d_detail::tile_m - 1) / conv2d_detail::tile_m) *
                          ((columns + conv2d_detail::tile_n - 1) / conv2d_detail::tile_n);
    const int64_t wanted = std::min<int64_t>((target_blocks + tiles - 1) / tiles, 65535);
    const int64_t splits = std::max<int64_t>(1, std::min(wanted, reduction / min_split_length));
    if (splits == 1) return {1, reduction};
    const int64_t tiles_k = (reduction + conv2d_detail::tile_k - 1) / conv2d_detail::tile_k;
    const int64_t length = (tiles_k + splits - 1) / splits * conv2d_detail::tile_k;
    return {(reduction + length - 1) / length, length};
}

// Backward filter's FP32 GEMM (without the partials' sum and the bias).
cudaError_t launch_backward_filter(const ops::Conv2dShape& shape, const ConvGeometry& geometry, const float* input,
                                   const float* grad_output, const FilterSplit& split, float* grad_weight,
                                   float* workspace, cudaStream_t stream) {
    dim3 grid;
    if (!tile_grid(shape.out_channels, shape.in_channels * shape.kernel_height * shape.kernel_width, grid))
        return cudaErrorInvalidConfiguration;
    grid.z = static_cast<unsigned>(split.splits);
    // grad_output[n, co, p] as A[co, (n, p)]: chunks of one plane per sample.
    const int64_t positions = shape.out_height() * shape.out_width();
    const ChunkedRows a = chunked_rows(grad_output, shape.out_channels, shape.batch * positions, positions,
                                       shape.out_channels * positions, positions);
    return launch(conv2d_detail::conv2d_backward_filter_kernel, grid, dim3(conv2d_detail::threads_per_block), 0,
                  stream, geometry, a, input, split.length, grad_weight, workspace);
}

}  // namespace

std::size_t conv2d_backward_filter_workspace_bytes(const ops::Conv2dShape& shape) {
    if (!is_valid(shape) || shape.batch == 0) return 0;
    const FilterSplit split = filter_split(shape);
    const std::size_t filter = split.splits == 1 ? 0 : std::size_t(split.splits * shape.weight_size()) * sizeof(float);
    // The bias gradient's channel sums run after the filter's partials are added.
    return std::max(filter, channel_sums_workspace_bytes(shape.batch, shape.out_channels,
                                                          shape.out_height() * shape.out_width()));
}

cudaError_t conv2d_forward(const ops::Conv2dShape& shape, const float* input, const float* weight, const float* bias,
                           ops::Activation activation, float negative_slope, float* output, cudaStream_t stream,
                           MatmulPrecision precision) {
    if (!is_valid(shape)) return cudaErrorInvalidValue;
    if (shape.batch == 0) return cudaSuccess;
    if (precision != MatmulPrecision::fp32 && conv2d_tensor_core_applies(shape))
        return tc_conv::forward(shape, input, weight, bias, activation, negative_slope, output, precision, stream);
    const int64_t k_count = shape.in_channels * shape.kernel_height * shape.kernel_width;
    dim3 grid;
    if (!tile_grid(shape.out_channels, shape.batch * shape.out_height() * shape.out_width(), grid))
        return cudaErrorInvalidConfiguration;
    return launch(conv2d_detail::conv2d_forward_kernel, grid, dim3(conv2d_detail::threads_per_block), 0, stream,
                  geometry_of(shape), chunked_rows(weight, shape.out_channels, k_count, k_count, 0, k_count), input,
                  bias, activation, negative_slope, output);
}

cudaError_t conv2d_backward_data(const ops::Conv2dShape& shape, const float* weight, const float* grad_output,
                                 float* grad_input, cudaStream_t stream, MatmulPrecision precision,
                                 bool accumulate) {
    if (!is_valid(shape)) return cudaErrorInvalidValue;
    if (shape.batch == 0) return cudaSuccess;
    if (precision != MatmulPrecision::fp32 && conv2d_tensor_core_applies(shape))
        return tc_conv::backward_data(shape, weight, grad_output, grad_input, precision, stream, MmaTiles::automatic,
                                      accumulate);
    const int64_t window = shape.kernel_height * shape.kernel_width;
    dim3 grid;
    if (!tile_grid(shape.in_channels, shape.batch * shape.in_height * shape.in_width, grid))
        return cudaErrorInvalidConfiguration;
    // weight[co, ci, r, s] as A[ci, (co, r, s)]: chunks of one window per co.
    const ChunkedRows a = chunked_rows(weight, shape.in_channels, shape.out_channels * window, window,
                                       shape.in_channels * window, window);
    return launch(conv2d_detail::conv2d_backward_data_kernel, grid, dim3(conv2d_detail::threads_per_block), 0, stream,
                  geometry_of(shape), a, grad_output, grad_input, accumulate);
}

cudaError_t conv2d_backward_filter(const ops::Conv2dShape& shape, const float* input, const float* grad_output,
                                   float* grad_weight, float* grad_bias, float* workspace, cudaStream_t stream,
                                   MatmulPrecision precision) {
    if (!is_valid(shape)) return cudaErrorInvalidValue;
    if (shape.batch == 0) return cudaSuccess;
    const FilterSplit split = filter_split(shape);
    if (split.splits > 1 && workspace == nullptr) return cudaErrorInvalidValue;
    const ConvGeometry geometry = geometry_of(shape);
    cudaError_t error = precision != MatmulPrecision::fp32 && conv2d_tensor_core_applies(shape)
                            ? tc_conv::backward_filter(shape, input, grad_output, split.splits, split.length,
                                                       grad_weight, workspace, precision, stream)
                            : launch_backward_filter(shape, geometry, input, grad_output, split, grad_weight, workspace,
                                                     stream);
    if (error == cudaSuccess && split.splits > 1) {
        const int64_t size = shape.weight_size(), threads = 256;
        const int64_t blocks = std::min<int64_t>((size + threads - 1) / threads, 4096);
        error = launch(conv2d_detail::conv2d_sum_partials_kernel, dim3(static_cast<unsigned>(blocks)),
                       dim3(static_cast<unsigned>(threads)), 0, stream, size, split.splits,
                       static_cast<const float*>(workspace), grad_weight);
    }
    if (error != cudaSuccess || grad_bias == nullptr) return error;
    return add_channel_sums(shape.batch, shape.out_channels, shape.out_height() * shape.out_width(), grad_output,
                            grad_bias, workspace, stream);
}

}  // namespace ladon::cuda
