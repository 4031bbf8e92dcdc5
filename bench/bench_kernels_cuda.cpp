// The CUDA side of bench_kernels (see bench_kernels.cpp for how a row is
// measured): ladon's kernels beside cuDNN and cuBLAS on one stream. Each
// conv and dense row times the vendor twice, with TF32 off (CUDNN_FMA_MATH,
// CUBLAS_PEDANTIC_MATH: vs_vendor) and with the math PyTorch users get by
// default (CUDNN_DEFAULT_MATH, which lets cuDNN pick TF32 tensor-core
// algorithms, and CUBLAS_TF32_TENSOR_OP_MATH: vs_vendor_tf32). The
// tensor-core rows (op name _tf32, _bf16) run ladon in that math beside the
// same two, and the BF16 rows beside a third: cuDNN on BF16 tensors and
// cublasGemmEx on BF16 operands (vs_vendor_bf16). Rows with FLOPs report
// TFLOP/s and pct_of_peak, the share of the H100/H200 ceiling of ladon's
// math (FP32 67, TF32 495, BF16 990 TFLOP/s). Built where the CUDA kernels
// and cuDNN are (LADON_BENCH_CUDA).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bench/bench_kernels.hpp"
#include "bench/bench_kernels_cuda.hpp"
#include "kernels/cuda/batch_norm.hpp"
#include "kernels/cuda/conv2d.hpp"
#include "kernels/cuda/device_memory.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/multi_head_loss.hpp"
#include "kernels/cuda/optimizer.hpp"
#include "kernels/cuda/pool.hpp"

// ---------------------------------------------------------------- CUDA backend
// cuDNN 9 marks its descriptor API (and cudnnFind*, cudnnBatchNormalization*)
// deprecated in favour of the graph API; it is still shipped, and it is the
// baseline frameworks' cuDNN paths use, so its warnings are silenced here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace {

using namespace ladon::bench;

// The first (fastest) result cudnnFind* measured that runs under `math`:
// CUDNN_FMA_MATH only FP32 FMA; CUDNN_DEFAULT_MATH whatever cuDNN picks for
// float data, TF32 tensor cores included (PyTorch's default). Or an error.
template <class Perf>
const Perf& fastest_algorithm(const std::vector<Perf>& results, int returned, cudnnMathType_t math, const char* find) {
    for (int i = 0; i < returned; ++i)
        if (results[std::size_t(i)].status == CUDNN_STATUS_SUCCESS &&
            (math == CUDNN_DEFAULT_MATH || results[std::size_t(i)].mathType == math))
            return results[std::size_t(i)];
    throw std::runtime_error(std::string(find) + " found no algorithm that runs with " +
                             (math == CUDNN_FMA_MATH ? "CUDNN_FMA_MATH" : "CUDNN_DEFAULT_MATH"));
}

// Scratch for cudnnFind*: algorithms that need more are not tried.
std::size_t find_workspace_bytes() {
    std::size_t free_bytes = 0, total_bytes = 0;
    LADON_BENCH_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    return std::min<std::size_t>(std::size_t(1) << 30, free_bytes / 4);
}

// Counters and label for the algorithm cuDNN chose for one side: `side` FMA,
// TF32 or BF16, its counters prefixed `prefix` (vendor, vendor_tf32, vendor_bf16).
template <class Perf>
void describe_algorithm(Prepared& row, const char* pass, const Perf& best, const char* side,
                        const std::string& prefix) {
    row.counters[prefix + "_algo"] = double(best.algo);
    row.counters[prefix + "_deterministic"] = best.determinism == CUDNN_DETERMINISTIC ? 1.0 : 0.0;
    row.label += std::string(row.label.empty() ? "vendor: cuDNN " : "; ") + pass + " " + side + " algo " +
                 std::to_string(int(best.algo)) +
                 (best.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION || best.mathType == CUDNN_TENSOR_OP_MATH
                      ? " (tensor ops)"
                      : "") +
                 (best.determinism == CUDNN_DETERMINISTIC ? "" : " (not deterministic)") + ", workspace " +
                 std::to_string(best.memory >> 20) + " MiB";
}

// Round to nearest even, as ladon's BF16 fragments and cuDNN's conversions do.
std::vector<uint16_t> to_bf16(const std::vector<float>& values) {
    std::vector<uint16_t> out(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
        uint32_t bits = 0;
        std::memcpy(&bits, &values[i], sizeof bits);
        out[i] = uint16_t((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
    }
    return out;
}

// cuDNN's view of a convolution's operands in one data type (FLOAT or
// BFLOAT16): NCHW tensors, an OIHW filter, and buffers of the same random
// values as ladon's (seeds 1, 2, 3).
struct CudnnOperands {
    cudnnTensorDescriptor_t x_desc, y_desc;
    cudnnFilterDescriptor_t w_desc;
    const void *x, *w, *gy;
    void *y, *gx, *gw;
};

CudnnOperands cudnn_operands(Prepared& row, const Conv2dShape& s, cudnnDataType_t data) {
    const bool bf16 = data == CUDNN_DATA_BFLOAT16;
    const std::size_t element = bf16 ? 2 : 4;
    const auto values = [&](int64_t count, uint64_t seed) -> const void* {
        const std::vector<float> floats = random_floats(count, seed);
        return bf16 ? row.keep(upload(to_bf16(floats))).get() : row.keep(upload(floats)).get();
    };
    const auto tensor = [&](int64_t c, int64_t h, int64_t w) {
        cudnnTensorDescriptor_t raw = nullptr;
        LADON_BENCH_CHECK(cudnnCreateTensorDescriptor(&raw));
        const cudnnTensorDescriptor_t descriptor = row.keep(TensorDescriptor(raw)).get();
        LADON_BENCH_CHECK(
            cudnnSetTensor4dDescriptor(raw, CUDNN_TENSOR_NCHW, data, int(s.batch), int(c), int(h), int(w)));
        return descriptor;
    };
    CudnnOperands o{};
    o.x_desc = tensor(s.in_channels, s.in_height, s.in_width);
    o.y_desc = tensor(s.out_channels, s.out_height(), s.out_width());
    cudnnFilterDescriptor_t w_raw = nullptr;
    LADON_BENCH_CHECK(cudnnCreateFilterDescriptor(&w_raw));
    o.w_desc = row.keep(FilterDescriptor(w_raw)).get();
    LADON_BENCH_CHECK(cudnnSetFilter4dDescriptor(o.w_desc, data, CUDNN_TENSOR_NCHW, int(s.out_channels),
                                                 int(s.in_channels), int(s.kernel_height), int(s.kernel_width)));
    o.x = values(s.input_size(), 1);
    o.w = values(s.weight_size(), 2);
    o.gy = values(s.output_size(), 3);
    o.y = row.keep(zeros(std::size_t(s.output_size()) * element)).get();
    o.gx = row.keep(zeros(std::size_t(s.input_size()) * element)).get();
    o.gw = row.keep(zeros(std::size_t(s.weight_size()) * element)).get();
    return o;
}

// The shape's convolution under `math`, accumulating in FP32.
cudnnConvolutionDescriptor_t cudnn_convolution(Prepared& row, const Conv2dShape& s, cudnnMathType_t math) {
    cudnnConvolutionDescriptor_t raw = nullptr;
    LADON_BENCH_CHECK(cudnnCreateConvolutionDescriptor(&raw));
    const cudnnConvolutionDescriptor_t descriptor = row.keep(ConvolutionDescriptor(raw)).get();
    LADON_BENCH_CHECK(cudnnSetConvolution2dDescriptor(descriptor, int(s.pad_height), int(s.pad_width),
                                                      int(s.stride_height), int(s.stride_width), 1, 1,
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    LADON_BENCH_CHECK(cudnnSetConvolutionMathType(descriptor, math));
    return descriptor;
}

// Where a cuDNN pass is searched and kept: the row, the math the algorithm
// must run under, the search's scratch, and the side's label and counters.
struct CudnnSearch {
    Prepared& row;
    cudnnMathType_t math;
    const DeviceBuffer& find_workspace;
    const char* side;
    const std::string& prefix;
};

// One pass's search: find(count, &returned, results, scratch, bytes) is the
// cudnnFind*AlgorithmEx call (named `find_name`); the fastest result under
// the search's math is described on the row, and run(algorithm, workspace,
// bytes) becomes the row's op, with the workspace that algorithm asks for.
template <class Perf, class Find, class Run>
Op fastest_pass(const CudnnSearch& search, const char* pass, const char* find_name, int algorithms, Find find,
                Run run) {
    std::vector<Perf> results(static_cast<std::size_t>(algorithms));
    int returned = 0;
    check_call(find(algorithms, &returned, results.data(), search.find_workspace.get(), search.find_workspace.bytes()),
               find_name);
    const Perf best = fastest_algorithm(results, returned, search.math, find_name);
    describe_algorithm(search.row, pass, best, search.side, search.prefix);
    auto& workspace = search.row.keep(DeviceBuffer(best.memory));
    void* ws = workspace.get();
    const std::size_t ws_bytes = workspace.bytes();
    const auto algorithm = best.algo;
    return [=] { run(algorithm, ws, ws_bytes); };
}

// cuDNN's pass on `o`: the fastest algorithm cudnnFind*Ex measured (among
// those of `math` when it is CUDNN_FMA_MATH, else any), with the workspace
// it asks for. Backward passes accumulate (beta = 1), as ladon does.
Op cudnn_pass(Prepared& row, cudnnHandle_t handle, ConvPass pass, const CudnnOperands& o,
              cudnnConvolutionDescriptor_t desc, cudnnMathType_t math, const DeviceBuffer& find_workspace,
              const char* side, const std::string& prefix) {
    static const float one = 1.0f, zero = 0.0f;
    const CudnnSearch search{row, math, find_workspace, side, prefix};
    if (pass == ConvPass::forward)
        return fastest_pass<cudnnConvolutionFwdAlgoPerf_t>(
            search, "forward", "cudnnFindConvolutionForwardAlgorithmEx", CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
            [&](int count, int* returned, cudnnConvolutionFwdAlgoPerf_t* results, void* ws, std::size_t bytes) {
                return cudnnFindConvolutionForwardAlgorithmEx(handle, o.x_desc, o.x, o.w_desc, o.w, desc, o.y_desc,
                                                              o.y, count, returned, results, ws, bytes);
            },
            [=](cudnnConvolutionFwdAlgo_t algorithm, void* ws, std::size_t bytes) {
                LADON_BENCH_CHECK(cudnnConvolutionForward(handle, &one, o.x_desc, o.x, o.w_desc, o.w, desc, algorithm,
                                                          ws, bytes, &zero, o.y_desc, o.y));
            });
    if (pass == ConvPass::backward_data)
        return fastest_pass<cudnnConvolutionBwdDataAlgoPerf_t>(
            search, "backward-data", "cudnnFindConvolutionBackwardDataAlgorithmEx",
            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
            [&](int count, int* returned, cudnnConvolutionBwdDataAlgoPerf_t* results, void* ws, std::size_t bytes) {
                return cudnnFindConvolutionBackwardDataAlgorithmEx(handle, o.w_desc, o.w, o.y_desc, o.gy, desc,
                                                                   o.x_desc, o.gx, count, returned, results, ws, bytes);
            },
            [=](cudnnConvolutionBwdDataAlgo_t algorithm, void* ws, std::size_t bytes) {
                LADON_BENCH_CHECK(cudnnConvolutionBackwardData(handle, &one, o.w_desc, o.w, o.y_desc, o.gy, desc,
                                                               algorithm, ws, bytes, &one, o.x_desc, o.gx));
            });
    return fastest_pass<cudnnConvolutionBwdFilterAlgoPerf_t>(
        search, "backward-filter", "cudnnFindConvolutionBackwardFilterAlgorithmEx",
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
        [&](int count, int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* results, void* ws, std::size_t bytes) {
            return cudnnFindConvolutionBackwardFilterAlgorithmEx(handle, o.x_desc, o.x, o.y_desc, o.gy, desc, o.w_desc,
                                                                 o.gw, count, returned, results, ws, bytes);
        },
        [=](cudnnConvolutionBwdFilterAlgo_t algorithm, void* ws, std::size_t bytes) {
            LADON_BENCH_CHECK(cudnnConvolutionBackwardFilter(handle, &one, o.x_desc, o.x, o.y_desc, o.gy, desc,
                                                             algorithm, ws, bytes, &one, o.w_desc, o.gw));
        });
}

ladon::cuda::MatmulPrecision precision_of(MatmulMath math) {
    return math == MatmulMath::tf32 ? ladon::cuda::MatmulPrecision::tf32 : ladon::cuda::MatmulPrecision::bf16;
}

double peak_of(ladon::cuda::MatmulPrecision precision) {
    return precision == ladon::cuda::MatmulPrecision::fp32   ? peak_fp32_tflops
           : precision == ladon::cuda::MatmulPrecision::tf32 ? peak_tf32_tflops
                                                             : peak_bf16_tflops;
}

struct CudaBackend {
    const CudaContext* cuda;

    // ladon's pass in `precision` beside cuDNN in FP32 FMA and with TF32 allowed.
    Prepared conv2d(const Conv2dShape& s, ConvPass pass,
                    ladon::cuda::MatmulPrecision precision = ladon::cuda::MatmulPrecision::fp32) const {
        const cudaStream_t stream = cuda->stream();
        const cudnnHandle_t handle = cuda->cudnn();
        Prepared row;
        row.work.flops = conv_flops(s);
        row.peak_tflops = peak_of(precision);
        const CudnnOperands o = cudnn_operands(row, s, CUDNN_DATA_FLOAT);
        const cudnnConvolutionDescriptor_t fma = cudnn_convolution(row, s, CUDNN_FMA_MATH);
        int n = 0, c = 0, h = 0, wd = 0;
        LADON_BENCH_CHECK(cudnnGetConvolution2dForwardOutputDim(fma, o.x_desc, o.w_desc, &n, &c, &h, &wd));
        if (n != s.batch || c != s.out_channels || h != s.out_height() || wd != s.out_width())
            throw std::runtime_error("cuDNN's convolution output shape differs from Conv2dShape's");

        const DeviceBuffer find_workspace(find_workspace_bytes());
        row.vendor = cudnn_pass(row, handle, pass, o, fma, CUDNN_FMA_MATH, find_workspace, "FMA", "vendor");
        row.vendor_tf32 = cudnn_pass(row, handle, pass, o, cudnn_convolution(row, s, CUDNN_DEFAULT_MATH),
                                     CUDNN_DEFAULT_MATH, find_workspace, "TF32", "vendor_tf32");

        // ladon on the same FP32 buffers.
        const auto* x = static_cast<const float*>(o.x);
        const auto* w = static_cast<const float*>(o.w);
        const auto* gy = static_cast<const float*>(o.gy);
        auto* y = static_cast<float*>(o.y);
        auto* gx = static_cast<float*>(o.gx);
        auto* gw = static_cast<float*>(o.gw);
        if (pass == ConvPass::forward) {
            row.ladon = [=] {
                LADON_BENCH_CHECK(ladon::cuda::conv2d_forward(s, x, w, nullptr, ladon::ops::Activation::identity,
                                                              0.0f, y, stream, precision));
            };
        } else if (pass == ConvPass::backward_data) {
            row.ladon = [=] { LADON_BENCH_CHECK(ladon::cuda::conv2d_backward_data(s, w, gy, gx, stream, precision)); };
        } else {
            float* ladon_ws = row.keep(DeviceBuffer(ladon::cuda::conv2d_backward_filter_workspace_bytes(s))).floats();
            row.ladon = [=] {
                LADON_BENCH_CHECK(
                    ladon::cuda::conv2d_backward_filter(s, x, gy, gw, nullptr, ladon_ws, stream, precision));
            };
        }
        return row;
    }

    // ladon's tensor-core pass; in BF16 cuDNN on BF16 tensors rides along
    // too (vs_vendor_bf16; its output is BF16, ladon's FP32).
    Prepared conv2d_tensor_core(const Conv2dShape& s, ConvPass pass, MatmulMath math) const {
        Prepared row = conv2d(s, pass, precision_of(math));
        if (math == MatmulMath::bf16) {
            const CudnnOperands o = cudnn_operands(row, s, CUDNN_DATA_BFLOAT16);
            const DeviceBuffer find_workspace(find_workspace_bytes());
            row.vendor_bf16 = cudnn_pass(row, cuda->cudnn(), pass, o, cudnn_convolution(row, s, CUDNN_TENSOR_OP_MATH),
                                         CUDNN_DEFAULT_MATH, find_workspace, "BF16", "vendor_bf16");
        }
        return row;
    }

    // cuBLAS is column-major: a row-major [r, c] matrix is its [c, r]
    // transpose, so each row-major product below is written transposed.
    Prepared dense(const DenseShape& s, DensePass pass,
                   ladon::cuda::MatmulPrecision precision = ladon::cuda::MatmulPrecision::fp32) const {
        const cudaStream_t stream = cuda->stream();
        Prepared row;
        row.work.flops = dense_flops(s);
        row.peak_tflops = peak_of(precision);
        row.label = "vendor: cublasSgemm, CUBLAS_PEDANTIC_MATH and CUBLAS_TF32_TENSOR_OP_MATH";
        const float* x = row.keep(upload(random_floats(s.batch * s.in_features, 1))).floats();
        const float* w = row.keep(upload(random_floats(s.out_features * s.in_features, 2))).floats();
        const float* gy = row.keep(upload(random_floats(s.batch * s.out_features, 3))).floats();
        float* y = row.keep(zero_floats(s.batch * s.out_features)).floats();
        float* gx = row.keep(zero_floats(s.batch * s.in_features)).floats();
        float* gw = row.keep(zero_floats(s.out_features * s.in_features)).floats();
        const int batch = int(s.batch), in = int(s.in_features), out = int(s.out_features);
        // The same SGEMM on a handle whose math mode decides FP32 or TF32.
        const auto vendor = [=](cublasHandle_t handle) -> Op {
            static const float one = 1.0f, zero = 0.0f;
            if (pass == DensePass::forward)  // y^T [out, batch] = w [out, in] . x^T [in, batch]
                return [=] {
                    LADON_BENCH_CHECK(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, out, batch, in, &one, w, in, x, in,
                                                  &zero, y, out));
                };
            if (pass == DensePass::backward_data)  // gx^T [in, batch] += w^T [in, out] . gy^T [out, batch]
                return [=] {
                    LADON_BENCH_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, in, batch, out, &one, w, in, gy,
                                                  out, &one, gx, in));
                };
            return [=] {  // gw^T [in, out] += x^T [in, batch] . gy [batch, out]
                LADON_BENCH_CHECK(
                    cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, in, out, batch, &one, x, in, gy, out, &one, gw, in));
            };
        };
        row.vendor = vendor(cuda->cublas());
        row.vendor_tf32 = vendor(cuda->cublas_tf32());
        if (pass == DensePass::forward)
            row.ladon = [=] {
                LADON_BENCH_CHECK(ladon::cuda::dense_forward(s, x, w, nullptr, ladon::ops::Activation::identity, 0.0f,
                                                             y, stream, precision));
            };
        else if (pass == DensePass::backward_data)
            row.ladon = [=] { LADON_BENCH_CHECK(ladon::cuda::dense_backward_data(s, w, gy, gx, stream, precision)); };
        else
            row.ladon = [=] {
                LADON_BENCH_CHECK(ladon::cuda::dense_backward_filter(s, x, gy, gw, nullptr, stream, precision));
            };
        // The tensor-core GEMM needs leading dimensions of multiples of 4 floats.
        const bool aligned = s.in_features % 4 == 0 && (pass == DensePass::forward || s.out_features % 4 == 0);
        if (precision != ladon::cuda::MatmulPrecision::fp32 && !aligned)
            row.label += " (ladon: FP32 fallback, unaligned)";
        return row;
    }

    // The same three products on ladon's tensor-core GEMM (TF32 or BF16
    // operands, FP32 accumulation), beside the same cuBLAS calls; in BF16
    // also cublasGemmEx on BF16 copies of the operands with FP32 output and
    // accumulation, ladon's contract exactly (vs_vendor_bf16).
    Prepared dense_tensor_core(const DenseShape& s, DensePass pass, MatmulMath math) const {
        Prepared row = dense(s, pass, precision_of(math));
        if (math == MatmulMath::tf32) return row;
        const auto bf16 = [&](int64_t count, uint64_t seed) {
            return row.keep(upload(to_bf16(random_floats(count, seed)))).get();
        };
        const void* x = bf16(s.batch * s.in_features, 1);
        const void* w = bf16(s.out_features * s.in_features, 2);
        const void* gy = bf16(s.batch * s.out_features, 3);
        float* out =
            row.keep(zero_floats(std::max(s.batch, s.out_features) * std::max(s.in_features, s.out_features))).floats();
        const int batch = int(s.batch), in = int(s.in_features), out_features = int(s.out_features);
        const cublasHandle_t handle = cuda->cublas_tf32();
        row.label += "; cublasGemmEx BF16 x BF16 -> FP32";
        row.vendor_bf16 = [=] {
            static const float one = 1.0f, zero = 0.0f;
            const auto gemm = [&](cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void* a,
                                  int lda, const void* b, int ldb, const float* beta, int ldc) {
                LADON_BENCH_CHECK(cublasGemmEx(handle, ta, tb, m, n, k, &one, a, CUDA_R_16BF, lda, b, CUDA_R_16BF, ldb,
                                               beta, out, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
            };
            if (pass == DensePass::forward)  // the transposes of dense()'s cublasSgemm calls
                gemm(CUBLAS_OP_T, CUBLAS_OP_N, out_features, batch, in, w, in, x, in, &zero, out_features);
            else if (pass == DensePass::backward_data)
                gemm(CUBLAS_OP_N, CUBLAS_OP_N, in, batch, out_features, w, in, gy, out_features, &one, in);
            else
                gemm(CUBLAS_OP_N, CUBLAS_OP_T, in, out_features, batch, x, in, gy, out_features, &one, in);
        };
        return row;
    }

    Prepared pool(const Pool2dShape& s, PoolPass pass) const {
        const cudaStream_t stream = cuda->stream();
        const cudnnHandle_t handle = cuda->cudnn();
        Prepared row;
        row.work.bytes = pool_bytes(s, pass, ladon::cuda::max_pool2d_argmax_bytes(s));
        const float* x = row.keep(upload(random_floats(s.input_size(), 1))).floats();
        const float* gy = row.keep(upload(random_floats(s.output_size(), 3))).floats();
        float* y = row.keep(zero_floats(s.output_size())).floats();
        float* gx = row.keep(zero_floats(s.input_size())).floats();
        auto* argmax =
            reinterpret_cast<int32_t*>(row.keep(zeros(std::size_t(s.output_size()) * sizeof(int32_t))).get());

        const bool max = pass == PoolPass::max_forward || pass == PoolPass::max_backward;
        const cudnnTensorDescriptor_t x_desc =
            row.keep(tensor_descriptor(s.batch, s.channels, s.in_height, s.in_width)).get();
        const cudnnTensorDescriptor_t y_desc =
            row.keep(tensor_descriptor(s.batch, s.channels, s.out_height(), s.out_width())).get();
        cudnnPoolingDescriptor_t pool_raw = nullptr;
        LADON_BENCH_CHECK(cudnnCreatePoolingDescriptor(&pool_raw));
        const cudnnPoolingDescriptor_t pool_desc = row.keep(PoolingDescriptor(pool_raw)).get();
        // ladon's max pool lets NaN win; its average counts the padding (count_include_pad).
        LADON_BENCH_CHECK(cudnnSetPooling2dDescriptor(
            pool_desc, max ? CUDNN_POOLING_MAX : CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING, CUDNN_PROPAGATE_NAN,
            int(s.kernel_height), int(s.kernel_width), int(s.pad_height), int(s.pad_width), int(s.stride_height),
            int(s.stride_width)));
        int n = 0, c = 0, h = 0, w = 0;
        LADON_BENCH_CHECK(cudnnGetPooling2dForwardOutputDim(pool_desc, x_desc, &n, &c, &h, &w));
        if (n != s.batch || c != s.channels || h != s.out_height() || w != s.out_width())
            throw std::runtime_error("cuDNN's pooling output shape differs from Pool2dShape's");
        row.label =
            max ? "vendor: cudnnPooling, CUDNN_POOLING_MAX" : "vendor: cudnnPooling, AVERAGE_COUNT_INCLUDE_PADDING";

        static const float one = 1.0f, zero = 0.0f;
        // The backward passes read the forward's results: ladon the argmax, cuDNN y.
        LADON_BENCH_CHECK(ladon::cuda::max_pool2d_forward(s, x, y, argmax, stream));
        LADON_BENCH_CHECK(cudnnPoolingForward(handle, pool_desc, &one, x_desc, x, &zero, y_desc, y));
        LADON_BENCH_CHECK(cudaStreamSynchronize(stream));
        const Op vendor_forward = [=] {
            LADON_BENCH_CHECK(cudnnPoolingForward(handle, pool_desc, &one, x_desc, x, &zero, y_desc, y));
        };
        const Op vendor_backward = [=] {  // beta = 1: accumulate, as ladon does
            LADON_BENCH_CHECK(
                cudnnPoolingBackward(handle, pool_desc, &one, y_desc, y, y_desc, gy, x_desc, x, &one, x_desc, gx));
        };
        switch (pass) {
            case PoolPass::max_forward:
                row.ladon = [=] { LADON_BENCH_CHECK(ladon::cuda::max_pool2d_forward(s, x, y, argmax, stream)); };
                row.vendor = vendor_forward;
                break;
            case PoolPass::max_backward:
                row.ladon = [=] { LADON_BENCH_CHECK(ladon::cuda::max_pool2d_backward(s, gy, argmax, gx, stream)); };
                row.vendor = vendor_backward;
                break;
            case PoolPass::average_forward:
                row.ladon = [=] { LADON_BENCH_CHECK(ladon::cuda::avg_pool2d_forward(s, x, y, stream)); };
                row.vendor = vendor_forward;
                break;
            case PoolPass::average_backward:
                row.ladon = [=] { LADON_BENCH_CHECK(ladon::cuda::avg_pool2d_backward(s, gy, gx, stream)); };
                row.vendor = vendor_backward;
                break;
        }
        return row;
    }

    Prepared batch_norm(const BatchNormShape& s, BatchNormPass pass) const {
        const cudaStream_t stream = cuda->stream();
        const cudnnHandle_t handle = cuda->cudnn();
        Prepared row;
        row.work.bytes = batch_norm_bytes(s, pass);
        row.label = "vendor: cudnnBatchNormalization, CUDNN_BATCHNORM_SPATIAL";
        const int64_t elements = s.batch * s.channels * s.spatial;
        const float* x = row.keep(upload(random_floats(elements, 1))).floats();
        const float* gy = row.keep(upload(random_floats(elements, 3))).floats();
        const float* gamma = row.keep(upload(random_floats(s.channels, 4, 0.5f, 1.5f))).floats();
        const float* beta = row.keep(upload(random_floats(s.channels, 5))).floats();
        float* y = row.keep(zero_floats(elements)).floats();
        float* gx = row.keep(zero_floats(elements)).floats();
        float* workspace = row.keep(zero_floats(int64_t(ladon::cuda::batch_norm_workspace_bytes(s) / sizeof(float))))
                               .floats();
        row.counters["blocks_per_channel"] = ladon::cuda::batch_norm_blocks_per_channel(s);
        const auto per_channel = [&](float value) {
            return row.keep(upload(std::vector<float>(std::size_t(s.channels), value))).floats();
        };
        // Each side keeps its own saved statistics (cuDNN's are its own format).
        float *mean = per_channel(0.0f), *inv_std = per_channel(1.0f), *vendor_mean = per_channel(0.0f),
              *vendor_inv_std = per_channel(1.0f), *running_mean = per_channel(0.0f), *running_var = per_channel(1.0f),
              *grad_gamma = per_channel(0.0f), *grad_beta = per_channel(0.0f);

        // x as [batch, channels, spatial, 1]; the per-channel tensors as cuDNN derives them.
        const cudnnTensorDescriptor_t x_desc = row.keep(tensor_descriptor(s.batch, s.channels, s.spatial, 1)).get();
        const cudnnTensorDescriptor_t channel_desc = row.keep(tensor_descriptor(1, s.channels, 1, 1)).get();
        LADON_BENCH_CHECK(cudnnDeriveBNTensorDescriptor(channel_desc, x_desc, CUDNN_BATCHNORM_SPATIAL));
        const double epsilon = std::max(double(s.epsilon), CUDNN_BN_MIN_EPSILON), momentum = s.momentum;

        static const float one = 1.0f, zero = 0.0f;
        const Op ladon_forward = [=] {
            LADON_BENCH_CHECK(ladon::cuda::batch_norm_forward_training(s, x, gamma, beta, y, mean, inv_std,
                                                                       running_mean, running_var, workspace, stream));
        };
        const Op vendor_forward = [=] {
            LADON_BENCH_CHECK(cudnnBatchNormalizationForwardTraining(
                handle, CUDNN_BATCHNORM_SPATIAL, &one, &zero, x_desc, x, x_desc, y, channel_desc, gamma, beta, momentum,
                running_mean, running_var, epsilon, vendor_mean, vendor_inv_std));
        };
        if (pass == BatchNormPass::forward_training) {
            row.ladon = ladon_forward;
            row.vendor = vendor_forward;
        } else {
            ladon_forward();  // the saved statistics the backward passes read
            vendor_forward();
            LADON_BENCH_CHECK(cudaStreamSynchronize(stream));
            row.ladon = [=] {
                LADON_BENCH_CHECK(ladon::cuda::batch_norm_backward(s, x, gy, gamma, mean, inv_std, gx, grad_gamma,
                                                                   grad_beta, workspace, stream));
            };
            row.vendor = [=] {  // every beta = 1: accumulate, as ladon does
                LADON_BENCH_CHECK(cudnnBatchNormalizationBackward(
                    handle, CUDNN_BATCHNORM_SPATIAL, &one, &one, &one, &one, x_desc, x, x_desc, gy, x_desc, gx,
                    channel_desc, gamma, grad_gamma, grad_beta, epsilon, vendor_mean, vendor_inv_std));
            };
        }
        return row;
    }

    Prepared loss(int64_t batch) const {
        const cudaStream_t stream = cuda->stream();
        Prepared row;
        row.work.bytes = loss_bytes(batch);
        std::vector<ladon::ops::LossHead> heads(std::size(loss_heads));
        for (int h = 0; h < num_loss_heads; ++h) {
            auto& head = heads[std::size_t(h)];
            head.kind = loss_heads[h].kind;
            head.width = loss_heads[h].width;
            head.logits = row.keep(upload(random_floats(batch * head.width, 10 + h, -3.0f, 3.0f))).floats();
            head.targets = row.keep(upload(loss_targets(loss_heads[h], batch, 20 + h))).floats();
            head.grad_logits = row.keep(zero_floats(batch * head.width)).floats();
        }
        // The kernel reads the head descriptors from device memory.
        const auto* heads_device = reinterpret_cast<const ladon::ops::LossHead*>(row.keep(upload(heads)).get());
        float* head_losses = row.keep(zero_floats(num_loss_heads)).floats();
        void* scratch = row.keep(zeros(ladon::cuda::multi_head_loss_scratch_bytes(batch, num_loss_heads))).get();
        row.ladon = [=] {
            LADON_BENCH_CHECK(
                ladon::cuda::multi_head_loss(batch, heads_device, num_loss_heads, head_losses, scratch, stream));
        };
        row.vendor = copy_baseline(row, cuda, row.work.bytes);
        return row;
    }

    Prepared optimizer(int64_t count, OptimizerKind kind) const {
        const cudaStream_t stream = cuda->stream();
        Prepared row;
        row.work.bytes = optimizer_bytes(count, kind);
        float* weights = row.keep(upload(random_floats(count, 1))).floats();
        const float* grads = row.keep(upload(random_floats(count, 2))).floats();
        float* first = row.keep(zero_floats(count)).floats();
        float* second = row.keep(zero_floats(count)).floats();
        if (kind == OptimizerKind::adamw)
            row.ladon = [=] {
                LADON_BENCH_CHECK(ladon::cuda::adamw_update(count, ladon::ops::AdamWParameters{}, weights, grads, first,
                                                            second, stream));
            };
        else
            row.ladon = [=] {
                LADON_BENCH_CHECK(ladon::cuda::sgd_update(count, ladon::ops::SgdParameters{0.01f, 0.9f, 0.0f, false},
                                                          weights, grads, first, stream));
            };
        row.vendor = copy_baseline(row, cuda, row.work.bytes);
        return row;
    }

    Prepared gating(const FeatureMap& map, int64_t batch, GatingPass pass) const {
        return cuda_gating_row(cuda, map, batch, pass);
    }
    Prepared mixture(const MixtureLayer& layer, int64_t batch, MixturePass pass) const {
        return cuda_mixture_row(cuda, layer, batch, pass);
    }
};

// The context and the runner live as long as the registered rows.
struct CudaRows {
    CudaContext context;
    Runner runner{[this](const Op& op) { return context.time_once(op); }, h200_copy_tbps};
};

}  // namespace

namespace ladon::bench {

std::string register_cuda_rows(std::shared_ptr<void>& keep) {
    auto rows = std::make_shared<CudaRows>();
    add_all_rows(rows->runner, "cuda", CudaBackend{&rows->context});
    keep = rows;
    return "cuda, " + rows->context.description();
}

}  // namespace ladon::bench

#pragma GCC diagnostic pop
