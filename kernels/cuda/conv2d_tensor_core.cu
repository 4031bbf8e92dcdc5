// Launch wrappers for the tensor-core convolutions (conv2d_tensor_core.cuh).
#include <cstdint>

#include "kernels/cuda/conv2d_tensor_core.cuh"
#include "kernels/cuda/conv2d_tensor_core.hpp"
#include "kernels/cuda/device.hpp"
#include "kernels/cuda/launch.hpp"

namespace ladon::cuda {
namespace tc_conv {
namespace {

Geometry geometry_of(const ops::Conv2dShape& s) {
    Geometry g{};
    g.batch = static_cast<int>(s.batch), g.in_channels = static_cast<int>(s.in_channels);
    g.in_height = static_cast<int>(s.in_height), g.in_width = static_cast<int>(s.in_width);
    g.out_channels = static_cast<int>(s.out_channels);
    g.out_height = static_cast<int>(s.out_height()), g.out_width = static_cast<int>(s.out_width());
    g.kernel_height = static_cast<int>(s.kernel_height), g.kernel_width = static_cast<int>(s.kernel_width);
    g.stride_height = static_cast<int>(s.stride_height), g.stride_width = static_cast<int>(s.stride_width);
    g.pad_height = static_cast<int>(s.pad_height), g.pad_width = static_cast<int>(s.pad_width);
    g.window = g.kernel_height * g.kernel_width;
    g.positions = g.out_height * g.out_width;
    g.pixels = g.in_height * g.in_width;
    const auto divisor = [](int value) { return FastDivisor(static_cast<std::uint32_t>(value)); };
    g.by_kernel_width = divisor(g.kernel_width), g.by_kernel_height = divisor(g.kernel_height);
    g.by_window = divisor(g.window);
    g.by_out_width = divisor(g.out_width), g.by_positions = divisor(g.positions);
    return g;
}

// One block per 64 x 64 tile of C[m_count, n_count].
bool tile_grid(int64_t m_count, int64_t n_count, dim3& grid) {
    const int64_t x = (n_count + block_n - 1) / block_n, y = (m_count + block_m - 1) / block_m;
    if (y > 65535) return false;
    grid = dim3(static_cast<unsigned>(x), static_cast<unsigned>(y));
    return true;
}

// Launches `kernel` with the pipeline's dynamic shared memory (above 48 KiB:
// the opt-in first).
template <typename A, typename B, typename Kernel, typename... Arguments>
cudaError_t launch_pipelined(Kernel kernel, dim3 grid, cudaStream_t stream, Arguments... arguments) {
    constexpr std::size_t bytes = shared_bytes<A, B>;
    static_assert(bytes > 48 * 1024, "the opt-in below is needed only above 48 KiB");
    if (const cudaError_t error = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int{bytes});
        error != cudaSuccess)
        return error;
    return launch(kernel, grid, dim3(threads_per_block), bytes, stream, arguments...);
}

template <bool bf16>
cudaError_t launch_forward(const ops::Conv2dShape& shape, const float* input, const float* weight, const float* bias,
                           ops::Activation activation, float negative_slope, float* output, cudaStream_t stream) {
    dim3 grid;
    if (!tile_grid(shape.out_channels, shape.batch * shape.out_height() * shape.out_width(), grid))
        return cudaErrorInvalidConfiguration;
    using A = TileLayout<true, bf16>;
    using B = TileLayout<false, bf16>;
    const int64_t k_count = shape.in_channels * shape.kernel_height * shape.kernel_width;
    const Geometry g = geometry_of(shape);
    // Rows of the weight as 16-byte chunks when each row starts 16-byte aligned.
    if (k_count % 4 == 0 && reinterpret_cast<std::uintptr_t>(weight) % 16 == 0)
        return launch_pipelined<A, B>(forward_kernel<bf16, true>, grid, stream, g, input, weight, bias, activation,
                                      negative_slope, output);
    return launch_pipelined<A, B>(forward_kernel<bf16, false>, grid, stream, g, input, weight, bias, activation,
                                  negative_slope, output);
}

template <bool bf16>
cudaError_t launch_backward_data(const ops::Conv2dShape& shape, const float* weight, const float* grad_output,
                                 float* grad_input, cudaStream_t stream) {
    // One plane of blocks per stride phase, each as wide as the largest
    // phase (the one starting at row and column 0).
    const int64_t phases = shape.stride_height * shape.stride_width;
    const int64_t rows = (shape.in_height + shape.stride_height - 1) / shape.stride_height;
    const int64_t columns = (shape.in_width + shape.stride_width - 1) / shape.stride_width;
    dim3 grid;
    if (!tile_grid(shape.in_channels, shape.batch * rows * columns, grid) || phases > 65535)
        return cudaErrorInvalidConfiguration;
    grid.z = static_cast<unsigned>(phases);
    return launch_pipelined<TileLayout<true, bf16>, TileLayout<false, bf16>>(
        backward_data_kernel<bf16>, grid, stream, geometry_of(shape), weight, grad_output, grad_input);
}

template <bool bf16>
cudaError_t launch_backward_filter(const ops::Conv2dShape& shape, const float* input, const float* grad_output,
                                   int64_t splits, int64_t split_length, float* grad_weight, float* partials,
                                   cudaStream_t stream) {
    dim3 grid;
    if (!tile_grid(shape.out_channels, shape.in_channels * shape.kernel_height * shape.kernel_width, grid) ||
        splits > 65535)
        return cudaErrorInvalidConfiguration;
    grid.z = static_cast<unsigned>(splits);
    return launch_pipelined<TileLayout<true, bf16>, TileLayout<true, bf16>>(
        backward_filter_kernel<bf16>, grid, stream, geometry_of(shape), input, grad_output,
        static_cast<int>(split_length), grad_weight, partials);
}

}  // namespace

cudaError_t forward(const ops::Conv2dShape& shape, const float* input, const float* weight, const float* bias,
                    ops::Activation activation, float negative_slope, float* output, MatmulPrecision precision,
                    cudaStream_t stream) {
    return precision == MatmulPrecision::bf16
               ? launch_forward<true>(shape, input, weight, bias, activation, negative_slope, output, stream)
               : launch_forward<false>(shape, input, weight, bias, activation, negative_slope, output, stream);
}

cudaError_t backward_data(const ops::Conv2dShape& shape, const float* weight, const float* grad_output,
                          float* grad_input, MatmulPrecision precision, cudaStream_t stream) {
    return precision == MatmulPrecision::bf16 ? launch_backward_data<true>(shape, weight, grad_output, grad_input, stream)
                                              : launch_backward_data<false>(shape, weight, grad_output, grad_input, stream);
}

cudaError_t backward_filter(const ops::Conv2dShape& shape, const float* input, const float* grad_output,
                            int64_t splits, int64_t split_length, float* grad_weight, float* partials,
                            MatmulPrecision precision, cudaStream_t stream) {
    return precision == MatmulPrecision::bf16
               ? launch_backward_filter<true>(shape, input, grad_output, splits, split_length, grad_weight, partials,
                                              stream)
               : launch_backward_filter<false>(shape, input, grad_output, splits, split_length, grad_weight, partials,
                                               stream);
}

}  // namespace tc_conv

bool conv2d_tensor_core_applies(const ops::Conv2dShape& s) {
    constexpr int64_t limit = INT32_MAX;
    const int64_t window = s.kernel_height * s.kernel_width;
    const int64_t pixels = s.in_height * s.in_width, positions = s.out_height() * s.out_width();
    // Offsets within a sample, GEMM dimensions and the padded coordinates
    // (ih + pad) the gathers form, all in 32 bits.
    return s.in_channels * pixels <= limit && s.out_channels * positions <= limit &&
           s.batch * pixels <= limit && s.batch * positions <= limit && s.in_channels * window <= limit &&
           s.out_channels * window <= limit && s.in_height + 2 * s.pad_height + s.kernel_height <= limit &&
           s.in_width + 2 * s.pad_width + s.kernel_width <= limit;
}

}  // namespace ladon::cuda
