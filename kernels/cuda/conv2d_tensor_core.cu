// Launch wrappers for the tensor-core convolutions (conv2d_tensor_core.cuh).
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/conv2d_tensor_core.cuh"
#include "kernels/cuda/conv2d_tensor_core.hpp"
#include "kernels/cuda/device.hpp"
#include "kernels/cuda/launch.hpp"

namespace ladon::cuda {
namespace tc_conv {
namespace {

using mma_pipeline::launch_pipelined;

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
    g.by_kernel_width = divisor(g.kernel_width);
    g.by_window = divisor(g.window);
    g.by_out_width = divisor(g.out_width), g.by_positions = divisor(g.positions);
    return g;
}

// One block per block_m x block_n tile of C[m_count, n_count].
template <typename T>
bool tile_grid(int64_t m_count, int64_t n_count, dim3& grid) {
    const int64_t x = (n_count + T::block_n - 1) / T::block_n, y = (m_count + T::block_m - 1) / T::block_m;
    if (y > 65535) return false;
    grid = dim3(static_cast<unsigned>(x), static_cast<unsigned>(y));
    return true;
}

template <typename T, bool bf16>
cudaError_t launch_forward(const ops::Conv2dShape& shape, const float* input, const float* weight, const float* bias,
                           ops::Activation activation, float negative_slope, float* output, cudaStream_t stream) {
    dim3 grid;
    if (!tile_grid<T>(shape.out_channels, shape.batch * shape.out_height() * shape.out_width(), grid))
        return cudaErrorInvalidConfiguration;
    using A = TileLayout<true, bf16, T::block_m>;
    using B = TileLayout<false, bf16, T::block_n>;
    const int64_t k_count = shape.in_channels * shape.kernel_height * shape.kernel_width;
    const Geometry g = geometry_of(shape);
    // Rows of the weight as 16-byte chunks when each row starts 16-byte
    // aligned; not with large tiles, where the chunks' 64-bit bounds
    // arithmetic beside four columns of gather state spills at 128 registers.
    if constexpr (std::is_same_v<T, SmallTiles>)
        if (k_count % 4 == 0 && reinterpret_cast<std::uintptr_t>(weight) % 16 == 0)
            return launch_pipelined<T, A, B>(forward_kernel<T, bf16, true>, grid, stream, g, input, weight, bias,
                                             activation, negative_slope, output);
    return launch_pipelined<T, A, B>(forward_kernel<T, bf16, false>, grid, stream, g, input, weight, bias, activation,
                                     negative_slope, output);
}

template <typename T, bool bf16>
cudaError_t launch_backward_data(const ops::Conv2dShape& shape, const float* weight, const float* grad_output,
                                 float* grad_input, bool accumulate, cudaStream_t stream) {
    // One plane of blocks per stride phase, each as wide as the largest
    // phase (the one starting at row and column 0).
    const int64_t phases = shape.stride_height * shape.stride_width;
    const int64_t rows = (shape.in_height + shape.stride_height - 1) / shape.stride_height;
    const int64_t columns = (shape.in_width + shape.stride_width - 1) / shape.stride_width;
    dim3 grid;
    if (!tile_grid<T>(shape.in_channels, shape.batch * rows * columns, grid) || phases > 65535)
        return cudaErrorInvalidConfiguration;
    grid.z = static_cast<unsigned>(phases);
    return launch_pipelined<T, TileLayout<true, bf16, T::block_m>, TileLayout<false, bf16, T::block_n>>(
        backward_data_kernel<T, bf16>, grid, stream, geometry_of(shape), weight, grad_output, grad_input, accumulate);
}

template <bool bf16>
cudaError_t launch_backward_filter(const ops::Conv2dShape& shape, const float* input, const float* grad_output,
                                   int64_t splits, int64_t split_length, float* grad_weight, float* partials,
                                   cudaStream_t stream) {
    using T = FilterTiles;
    dim3 grid;
    if (!tile_grid<T>(shape.out_channels, shape.in_channels * shape.kernel_height * shape.kernel_width, grid) ||
        splits > 65535)
        return cudaErrorInvalidConfiguration;
    grid.z = static_cast<unsigned>(splits);
    return launch_pipelined<T, TileLayout<true, bf16, T::block_m>, TileLayout<true, bf16, T::block_n>,
                            filter_table_bytes>(backward_filter_kernel<bf16>, grid, stream, geometry_of(shape), input,
                                                grad_output, static_cast<int>(split_length), grad_weight, partials);
}

// Calls launch<T, bf16>() for the tiles and precision asked.
template <typename Launch>
cudaError_t dispatch(MmaTiles tiles, MatmulPrecision precision, Launch launch) {
    const bool bf16 = precision == MatmulPrecision::bf16;
    if (tiles == MmaTiles::large)
        return bf16 ? launch.template operator()<LargeTiles, true>() : launch.template operator()<LargeTiles, false>();
    return bf16 ? launch.template operator()<SmallTiles, true>() : launch.template operator()<SmallTiles, false>();
}

}  // namespace

cudaError_t forward(const ops::Conv2dShape& shape, const float* input, const float* weight, const float* bias,
                    ops::Activation activation, float negative_slope, float* output, MatmulPrecision precision,
                    cudaStream_t stream, MmaTiles tiles) {
    if (tiles == MmaTiles::automatic)
        tiles = choose_mma_tiles(shape.out_channels, shape.batch * shape.out_height() * shape.out_width());
    return dispatch(tiles, precision, [&]<typename T, bool bf16>() {
        return launch_forward<T, bf16>(shape, input, weight, bias, activation, negative_slope, output, stream);
    });
}

cudaError_t backward_data(const ops::Conv2dShape& shape, const float* weight, const float* grad_output,
                          float* grad_input, MatmulPrecision precision, cudaStream_t stream, MmaTiles tiles,
                          bool accumulate) {
    if (tiles == MmaTiles::automatic)
        tiles = choose_mma_tiles(shape.in_channels, shape.batch * shape.in_height * shape.in_width /
                                                        (shape.stride_height * shape.stride_width));
    return dispatch(tiles, precision, [&]<typename T, bool bf16>() {
        return launch_backward_data<T, bf16>(shape, weight, grad_output, grad_input, accumulate, stream);
    });
}

cudaError_t backward_filter(const ops::Conv2dShape& shape, const float* input, const float* grad_output, int64_t splits,
                            int64_t split_length, float* grad_weight, float* partials, MatmulPrecision precision,
                            cudaStream_t stream) {
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
    return s.in_channels * pixels <= limit && s.out_channels * positions <= limit && s.batch * pixels <= limit &&
           s.batch * positions <= limit && s.in_channels * window <= limit && s.out_channels * window <= limit &&
           s.in_height + 2 * s.pad_height + s.kernel_height <= limit &&
           s.in_width + 2 * s.pad_width + s.kernel_width <= limit;
}

}  // namespace ladon::cuda
