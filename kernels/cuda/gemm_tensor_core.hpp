#pragma once
// The GEMM of gemm.hpp on the tensor cores (precision fp32: gemm itself): the operands rounded to TF32 or
// BF16 as the fragments are loaded, FP32 accumulation and output. Same
// arguments and contract as cuda::gemm; where the tensor-core kernel's
// alignment does not hold (lda or ldb not a multiple of 4 floats, A or B not
// 16-byte aligned) it runs cuda::gemm's FP32 kernel instead.
#include "kernels/cuda/device.hpp"
#include "kernels/cuda/gemm.hpp"

namespace ladon::cuda {

// The block tiles of the tensor-core kernels (mma_pipeline.cuh): 64 x 64 in
// 4 warps, or 128 x 128 in 8 warps, which reads half the shared memory per
// FLOP but needs big products to fill the GPU. `automatic` is
// choose_mma_tiles.
enum class MmaTiles { automatic, small, large };

// The tiles for a product with an M x N result: large when it gives every
// SM at least one block (132 SMs, an H100 or H200) and neither M nor N would
// leave half of each block empty (<= 64), else small. A rule from the tiles'
// arithmetic, not yet tuned on a GPU.
MmaTiles choose_mma_tiles(int64_t m, int64_t n);

// Into how many slices of K to split a product whose tiles alone leave SMs
// idle (a dense layer's 128 x 256 output is 8 blocks of 64 x 64): enough
// that the blocks fill the 132 SMs once, each slice at least 4 k-tiles (128
// of K), at most 32. 1 for the large tiles, which are only chosen when
// they already fill the GPU. Block z sums its slice; a second kernel adds
// the slices in z order and applies the epilogue: deterministic.
int choose_split_k(int64_t m, int64_t n, int64_t k, MmaTiles tiles);

// The scratch a split of `splits` slices needs (splits x M x N floats; 0 for one).
std::size_t split_k_bytes(int64_t m, int64_t n, int64_t k, int splits);

// splits 0: choose_split_k. A split needs split_k_bytes of scratch; with less it does not split.
cudaError_t gemm_tensor_core(const GemmArguments& arguments, MatmulPrecision precision, cudaStream_t stream,
                             MmaTiles tiles = MmaTiles::automatic, GemmScratch scratch = {}, int splits = 0);

// Whether gemm_tensor_core takes the tensor cores for these arguments.
bool gemm_tensor_core_applies(const GemmArguments& arguments);

}  // namespace ladon::cuda
