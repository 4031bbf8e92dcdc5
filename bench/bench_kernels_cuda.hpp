#pragma once
// What the CUDA sides of bench_kernels share (bench_kernels_cuda.cpp, the
// kernels beside cuDNN and cuBLAS; bench_kernels_gating_cuda.cpp, the gating
// ops): checked vendor calls, owned handles and buffers, the context that
// times a call on one stream behind an L2 flush, and the copy baseline.
// Built where the CUDA kernels and cuDNN are (LADON_BENCH_CUDA).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bench/bench_kernels.hpp"
#include "kernels/cuda/device_memory.hpp"

// cuDNN 9 marks its descriptor API deprecated in favour of the graph API; it
// is still shipped, and it is the baseline frameworks' cuDNN paths use.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace ladon::bench {

// "cudnnConvolutionForward(handle, ...)" -> "cudnnConvolutionForward".
inline std::string call_name(const char* call) {
    const std::string text(call);
    return text.substr(0, text.find('('));
}
inline void check_call(cudaError_t status, const char* call) {
    if (status != cudaSuccess)
        throw std::runtime_error(call_name(call) + " failed: " + cudaGetErrorName(status) + " (" +
                                 cudaGetErrorString(status) + ")");
}
inline void check_call(cudnnStatus_t status, const char* call) {
    if (status != CUDNN_STATUS_SUCCESS)
        throw std::runtime_error(call_name(call) + " failed: " + cudnnGetErrorString(status));
}
inline void check_call(cublasStatus_t status, const char* call) {
    if (status != CUBLAS_STATUS_SUCCESS)
        throw std::runtime_error(call_name(call) + " failed: " + cublasGetStatusName(status));
}
#define LADON_BENCH_CHECK(call) check_call((call), #call)

// Owners of the libraries' handles (each a pointer type); the runtime's are
// kernels/cuda/device_memory.hpp's.
template <auto destroy>
struct Destroy {
    template <class Pointer>
    void operator()(Pointer* handle) const {
        destroy(handle);
    }
};
template <class Handle, auto destroy>
using Owned = std::unique_ptr<std::remove_pointer_t<Handle>, Destroy<destroy>>;
using CudnnHandle = Owned<cudnnHandle_t, cudnnDestroy>;
using CublasHandle = Owned<cublasHandle_t, cublasDestroy>;
using TensorDescriptor = Owned<cudnnTensorDescriptor_t, cudnnDestroyTensorDescriptor>;
using FilterDescriptor = Owned<cudnnFilterDescriptor_t, cudnnDestroyFilterDescriptor>;
using ConvolutionDescriptor = Owned<cudnnConvolutionDescriptor_t, cudnnDestroyConvolutionDescriptor>;
using PoolingDescriptor = Owned<cudnnPoolingDescriptor_t, cudnnDestroyPoolingDescriptor>;

// Bytes of device memory, most rows' buffers being floats.
class DeviceBuffer : public ladon::cuda::DeviceBuffer<unsigned char> {
public:
    using ladon::cuda::DeviceBuffer<unsigned char>::DeviceBuffer;
    float* floats() const { return reinterpret_cast<float*>(get()); }
};

template <class T>
DeviceBuffer upload(const std::vector<T>& values) {
    DeviceBuffer buffer(values.size() * sizeof(T));
    LADON_BENCH_CHECK(cudaMemcpy(buffer.get(), values.data(), buffer.bytes(), cudaMemcpyHostToDevice));
    return buffer;
}
inline DeviceBuffer zeros(std::size_t bytes) {
    DeviceBuffer buffer(bytes);
    buffer.zero();
    return buffer;
}
inline DeviceBuffer zero_floats(int64_t count) { return zeros(std::size_t(count) * sizeof(float)); }

// One stream, one cuDNN and one cuBLAS handle on it, the timing events, and
// the buffer whose memset flushes L2 before each timed call.
class CudaContext {
public:
    CudaContext() {
        const cudaStream_t stream = stream_.get();
        cudnnHandle_t cudnn = nullptr;
        LADON_BENCH_CHECK(cudnnCreate(&cudnn));
        cudnn_.reset(cudnn);
        LADON_BENCH_CHECK(cudnnSetStream(cudnn, stream));
        cublasHandle_t cublas = nullptr;
        LADON_BENCH_CHECK(cublasCreate(&cublas));
        cublas_.reset(cublas);
        LADON_BENCH_CHECK(cublasSetStream(cublas, stream));
        // FP32 everywhere: pedantic math forbids TF32 and any reduced precision.
        LADON_BENCH_CHECK(cublasSetMathMode(cublas, CUBLAS_PEDANTIC_MATH));
        // The second handle: TF32 tensor cores allowed, what PyTorch users get
        // with torch.backends.cuda.matmul.allow_tf32 (and cuDNN by default).
        LADON_BENCH_CHECK(cublasCreate(&cublas));
        cublas_tf32_.reset(cublas);
        LADON_BENCH_CHECK(cublasSetStream(cublas, stream));
        LADON_BENCH_CHECK(cublasSetMathMode(cublas, CUBLAS_TF32_TENSOR_OP_MATH));
        int device = 0, l2_bytes = 0;
        LADON_BENCH_CHECK(cudaGetDevice(&device));
        LADON_BENCH_CHECK(cudaGetDeviceProperties(&properties_, device));
        LADON_BENCH_CHECK(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device));
        l2_flush_ = std::make_unique<DeviceBuffer>(2 * std::size_t(std::max(l2_bytes, 1 << 20)));
    }

    cudaStream_t stream() const { return stream_.get(); }
    cudnnHandle_t cudnn() const { return cudnn_.get(); }
    cublasHandle_t cublas() const { return cublas_.get(); }
    cublasHandle_t cublas_tf32() const { return cublas_tf32_.get(); }

    std::string description() const {
        int runtime = 0, cublas_version = 0;
        cudaRuntimeGetVersion(&runtime);
        cublasGetVersion(cublas_.get(), &cublas_version);
        return std::string(properties_.name) + " (sm_" + std::to_string(properties_.major) +
               std::to_string(properties_.minor) + "), CUDA runtime " + std::to_string(runtime) + ", against cuDNN " +
               std::to_string(cudnnGetVersion()) + " and cuBLAS " + std::to_string(cublas_version) +
               ", vendor with TF32 off (vs_vendor) and on (vs_vendor_tf32), BF16 rows also on BF16 (vs_vendor_bf16)";
    }

    // Seconds `op` takes on the stream, measured with events after an L2 flush.
    double time_once(const Op& op) const {
        LADON_BENCH_CHECK(cudaMemsetAsync(l2_flush_->get(), 0, l2_flush_->bytes(), stream()));
        LADON_BENCH_CHECK(cudaEventRecord(start_.get(), stream()));
        op();
        LADON_BENCH_CHECK(cudaEventRecord(stop_.get(), stream()));
        LADON_BENCH_CHECK(cudaEventSynchronize(stop_.get()));
        float milliseconds = 0.0f;
        LADON_BENCH_CHECK(cudaEventElapsedTime(&milliseconds, start_.get(), stop_.get()));
        return double(milliseconds) * 1e-3;
    }

private:
    ladon::cuda::Stream stream_{cudaStreamDefault, "cudaStreamCreate"};
    ladon::cuda::Event start_{cudaEventDefault, "cudaEventCreate"}, stop_{cudaEventDefault, "cudaEventCreate"};
    CudnnHandle cudnn_;
    CublasHandle cublas_, cublas_tf32_;
    cudaDeviceProp properties_{};
    std::unique_ptr<DeviceBuffer> l2_flush_;
};

inline TensorDescriptor tensor_descriptor(int64_t n, int64_t c, int64_t h, int64_t w) {
    cudnnTensorDescriptor_t raw = nullptr;
    LADON_BENCH_CHECK(cudnnCreateTensorDescriptor(&raw));
    TensorDescriptor descriptor(raw);
    LADON_BENCH_CHECK(
        cudnnSetTensor4dDescriptor(raw, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(n), int(c), int(h), int(w)));
    return descriptor;
}

// Where an op has no cuDNN or cuBLAS counterpart: a device-to-device copy of
// the same traffic (half the bytes read, half written).
inline Op copy_baseline(Prepared& row, const CudaContext* cuda, double bytes) {
    const std::size_t copy_bytes = std::size_t(bytes / 2.0);
    void* source = row.keep(zeros(copy_bytes)).get();
    void* destination = row.keep(zeros(copy_bytes)).get();
    row.label = "vendor: cudaMemcpyAsync of the same bytes";
    return [=] {
        LADON_BENCH_CHECK(cudaMemcpyAsync(destination, source, copy_bytes, cudaMemcpyDeviceToDevice, cuda->stream()));
    };
}

// The gating ops' rows (bench_kernels_gating_cuda.cpp).
Prepared cuda_gating_row(const CudaContext* cuda, const FeatureMap& map, int64_t batch, GatingPass pass);
Prepared cuda_mixture_row(const CudaContext* cuda, const MixtureLayer& layer, int64_t batch, MixturePass pass);

}  // namespace ladon::bench

#pragma GCC diagnostic pop
