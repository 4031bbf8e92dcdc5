#pragma once
// Device code for the elementwise ops (activations, dropout, add, accumulate)
// and channel concat. Every kernel here is a template, so this header may be
// included by several .cu files (gemm.cu takes the activations for its
// epilogue). Pointers are not __restrict__: activations and adds may run in
// place (y == x), as on the CPU.
#include <cstdint>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/random.cuh"
#include "kernels/ops.hpp"

namespace ladon::cuda::elementwise {

constexpr int threads_per_block = 256;

// ---------------------------------------------------------------- activations
// The same formulas as kernels/cpu/elementwise.cpp, element for element.

// Never overflows: for large |v| it saturates to 0 or 1.
__device__ __forceinline__ float stable_sigmoid(float v) {
    if (v >= 0.0f) return 1.0f / (1.0f + expf(-v));
    const float e = expf(v);
    return e / (1.0f + e);
}

template <ops::Activation kind>
__device__ __forceinline__ float activate(float x, float negative_slope) {
    static_assert(kind == ops::Activation::identity || kind == ops::Activation::relu ||
                  kind == ops::Activation::leaky_relu || kind == ops::Activation::sigmoid ||
                  kind == ops::Activation::tanh);
    // x < 0, not !(x > 0): NaN passes through, as in PyTorch.
    if constexpr (kind == ops::Activation::relu)
        return x < 0.0f ? 0.0f : x;
    else if constexpr (kind == ops::Activation::leaky_relu)
        return x > 0.0f ? x : negative_slope * x;
    else if constexpr (kind == ops::Activation::sigmoid)
        return stable_sigmoid(x);
    else if constexpr (kind == ops::Activation::tanh)
        return tanhf(x);
    else
        return x;
}

// The runtime-dispatched form, for the GEMM epilogue (the branch is uniform
// across the grid).
__device__ __forceinline__ float activate(ops::Activation kind, float negative_slope, float x) {
    switch (kind) {
        case ops::Activation::identity:
            return x;
        case ops::Activation::relu:
            return activate<ops::Activation::relu>(x, negative_slope);
        case ops::Activation::leaky_relu:
            return activate<ops::Activation::leaky_relu>(x, negative_slope);
        case ops::Activation::sigmoid:
            return activate<ops::Activation::sigmoid>(x, negative_slope);
        case ops::Activation::tanh:
            return activate<ops::Activation::tanh>(x, negative_slope);
    }
    return x;
}

// d(activation)/dx · grad_y. ReLU-like kinds read the input x (derivative 0
// at the kink x = 0), sigmoid and tanh the output y; the other may be nullptr.
template <ops::Activation kind>
__device__ __forceinline__ float activation_gradient(float x, float y, float grad_y, float negative_slope) {
    if constexpr (kind == ops::Activation::relu)
        return x > 0.0f ? grad_y : 0.0f;
    else if constexpr (kind == ops::Activation::leaky_relu)
        return x > 0.0f ? grad_y : negative_slope * grad_y;
    else if constexpr (kind == ops::Activation::sigmoid)
        return grad_y * y * (1.0f - y);
    else if constexpr (kind == ops::Activation::tanh)
        return grad_y * (1.0f - y * y);
    else
        return grad_y;  // identity
}

template <ops::Activation kind>
constexpr bool gradient_reads_input = kind == ops::Activation::relu || kind == ops::Activation::leaky_relu;
template <ops::Activation kind>
constexpr bool gradient_reads_output = kind == ops::Activation::sigmoid || kind == ops::Activation::tanh;

// ---------------------------------------------------------------- float4 helpers

__device__ __forceinline__ bool aligned16(const void* pointer) {
    return reinterpret_cast<uintptr_t>(pointer) % 16 == 0;
}
__device__ __forceinline__ float4 load4(const float* base, int64_t vector) {
    return reinterpret_cast<const float4*>(base)[vector];
}
__device__ __forceinline__ void store4(float* base, int64_t vector, float4 value) {
    reinterpret_cast<float4*>(base)[vector] = value;
}
__device__ __forceinline__ float4 add4(float4 a, float4 b) {
    return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}

// ---------------------------------------------------------------- the one elementwise kernel
// An op is a trivially copyable struct of pointers and scalars with
//   bool vectorizable() const   every pointer it touches is 16-byte aligned
//   void apply(int64_t i)       element i
//   void apply4(int64_t v)      elements 4v .. 4v+3 as float4 loads and stores
//
// Grid-stride loops, one element (or float4) per thread per step: first the
// count / 4 whole vectors when every pointer is aligned, then the tail (or
// everything) one float at a time. Elements are independent: no barrier, no
// order, and the result does not depend on the launch shape.
template <typename Op>
__global__ void __launch_bounds__(threads_per_block) elementwise_kernel(int64_t count, Op op) {
    const int64_t start = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
    const int64_t stride = int64_t{gridDim.x} * blockDim.x;
    const int64_t vectors = op.vectorizable() ? count / 4 : 0;
    for (int64_t v = start; v < vectors; v += stride) op.apply4(v);
    for (int64_t i = vectors * 4 + start; i < count; i += stride) op.apply(i);
}

template <ops::Activation kind>
struct ActivationForward {
    float negative_slope;
    const float* x;
    float* y;
    __device__ bool vectorizable() const { return aligned16(x) && aligned16(y); }
    __device__ void apply(int64_t i) const { y[i] = activate<kind>(x[i], negative_slope); }
    __device__ void apply4(int64_t v) const {
        const float4 in = load4(x, v);
        store4(y, v,
               make_float4(activate<kind>(in.x, negative_slope), activate<kind>(in.y, negative_slope),
                           activate<kind>(in.z, negative_slope), activate<kind>(in.w, negative_slope)));
    }
};

// A backward step's gradient written out: added to what grad_x holds, or
// stored over it when this is the gradient's first write (engine/gradient_plan.hpp).
__device__ __forceinline__ float gradient_out(const float* grad_x, int64_t i, float step, bool accumulate) {
    return accumulate ? grad_x[i] + step : step;
}
__device__ __forceinline__ float4 gradient_out4(const float* grad_x, int64_t v, float4 step, bool accumulate) {
    return accumulate ? add4(load4(grad_x, v), step) : step;
}

template <ops::Activation kind>
struct ActivationBackward {
    float negative_slope;
    const float* x;  // read only when gradient_reads_input<kind>
    const float* y;  // read only when gradient_reads_output<kind>
    const float* grad_y;
    float* grad_x;
    bool accumulate;  // grad_x += step, else grad_x = step
    __device__ bool vectorizable() const {
        return aligned16(x) && aligned16(y) && aligned16(grad_y) && aligned16(grad_x);
    }
    __device__ void apply(int64_t i) const {
        const float xi = gradient_reads_input<kind> ? x[i] : 0.0f;
        const float yi = gradient_reads_output<kind> ? y[i] : 0.0f;
        grad_x[i] = gradient_out(grad_x, i, activation_gradient<kind>(xi, yi, grad_y[i], negative_slope), accumulate);
    }
    __device__ void apply4(int64_t v) const {
        const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        const float4 xv = gradient_reads_input<kind> ? load4(x, v) : zero;
        const float4 yv = gradient_reads_output<kind> ? load4(y, v) : zero;
        const float4 g = load4(grad_y, v);
        const float4 step = make_float4(activation_gradient<kind>(xv.x, yv.x, g.x, negative_slope),
                                        activation_gradient<kind>(xv.y, yv.y, g.y, negative_slope),
                                        activation_gradient<kind>(xv.z, yv.z, g.z, negative_slope),
                                        activation_gradient<kind>(xv.w, yv.w, g.w, negative_slope));
        store4(grad_x, v, gradient_out4(grad_x, v, step, accumulate));
    }
};

// Keeps element i when uniform01(seed, i) >= probability, scaled by `scale`
// = 1 / (1 - probability) computed in float on the host, as the CPU does.
// A non-null seed_device replaces `seed` when the kernel runs (a replayed
// CUDA graph takes each step's seed from device memory).
struct DropoutForward {
    float probability;
    float scale;
    uint64_t seed;
    const float* x;
    float* y;
    const uint64_t* seed_device = nullptr;
    __device__ float value(int64_t i, float xi) const {
        const uint64_t s = seed_device != nullptr ? *seed_device : seed;
        return uniform01(s, static_cast<uint64_t>(i)) >= probability ? xi * scale : 0.0f;
    }
    __device__ bool vectorizable() const { return aligned16(x) && aligned16(y); }
    __device__ void apply(int64_t i) const { y[i] = value(i, x[i]); }
    __device__ void apply4(int64_t v) const {
        const float4 in = load4(x, v);
        const int64_t i = 4 * v;
        store4(y, v, make_float4(value(i, in.x), value(i + 1, in.y), value(i + 2, in.z), value(i + 3, in.w)));
    }
};

struct DropoutBackward {
    DropoutForward mask;  // x and y unused
    const float* grad_y;
    float* grad_x;
    bool accumulate;
    __device__ bool vectorizable() const { return aligned16(grad_y) && aligned16(grad_x); }
    __device__ void apply(int64_t i) const { grad_x[i] = gradient_out(grad_x, i, mask.value(i, grad_y[i]), accumulate); }
    __device__ void apply4(int64_t v) const {
        const float4 g = load4(grad_y, v);
        const int64_t i = 4 * v;
        const float4 step =
            make_float4(mask.value(i, g.x), mask.value(i + 1, g.y), mask.value(i + 2, g.z), mask.value(i + 3, g.w));
        store4(grad_x, v, gradient_out4(grad_x, v, step, accumulate));
    }
};

// The sum, then ReLU where a following relu layer is fused (engine/fusion.hpp).
__device__ __forceinline__ float sum_output(float sum, bool relu) {
    return relu ? activate<ops::Activation::relu>(sum, 0.0f) : sum;
}
__device__ __forceinline__ float4 sum_output(float4 sum, bool relu) {
    return make_float4(sum_output(sum.x, relu), sum_output(sum.y, relu), sum_output(sum.z, relu),
                       sum_output(sum.w, relu));
}

struct Add {
    const float* a;
    const float* b;
    float* y;
    bool relu;
    __device__ bool vectorizable() const { return aligned16(a) && aligned16(b) && aligned16(y); }
    __device__ void apply(int64_t i) const { y[i] = sum_output(a[i] + b[i], relu); }
    __device__ void apply4(int64_t v) const { store4(y, v, sum_output(add4(load4(a, v), load4(b, v)), relu)); }
};

struct Accumulate {
    const float* source;
    float* destination;
    bool relu;
    __device__ bool vectorizable() const { return aligned16(source) && aligned16(destination); }
    __device__ void apply(int64_t i) const { destination[i] = sum_output(destination[i] + source[i], relu); }
    __device__ void apply4(int64_t v) const {
        store4(destination, v, sum_output(add4(load4(destination, v), load4(source, v)), relu));
    }
};

// data *= factor in place (a head's logit gradient weighted across
// data-parallel ranks), and data = value.
struct Scale {
    float factor;
    float* data;
    __device__ bool vectorizable() const { return aligned16(data); }
    __device__ void apply(int64_t i) const { data[i] *= factor; }
    __device__ void apply4(int64_t v) const {
        const float4 in = load4(data, v);
        store4(data, v, make_float4(in.x * factor, in.y * factor, in.z * factor, in.w * factor));
    }
};

struct Fill {
    float value;
    float* data;
    __device__ bool vectorizable() const { return aligned16(data); }
    __device__ void apply(int64_t i) const { data[i] = value; }
    __device__ void apply4(int64_t v) const { store4(data, v, make_float4(value, value, value, value)); }
};

// ---------------------------------------------------------------- concat
// Input sample n is one contiguous row of `row_length` = channels * spatial
// floats; in y it is the row starting at n * y_row_length + y_offset.
struct ConcatGeometry {
    int64_t batch;
    int64_t row_length;    // channels * spatial
    int64_t y_row_length;  // total_channels * spatial
    int64_t y_offset;      // channel_offset * spatial
};

// One thread per `width` consecutive floats of a row (width 4: float4, when
// every row start is 16-byte aligned), grid-stride over all rows' units.
// Forward copies input into its slice of y; backward adds the slice of
// grad_y into grad_input. Each destination element has one owner.
template <int width, bool backward>
__global__ void __launch_bounds__(threads_per_block)
    concat_kernel(ConcatGeometry geometry, const float* source, float* destination) {
    const int64_t units_per_row = geometry.row_length / width;
    const int64_t units = geometry.batch * units_per_row;
    const int64_t stride = int64_t{gridDim.x} * blockDim.x;
    for (int64_t unit = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; unit < units; unit += stride) {
        const int64_t n = unit / units_per_row, column = (unit % units_per_row) * width;
        const int64_t input_index = n * geometry.row_length + column;
        const int64_t y_index = n * geometry.y_row_length + geometry.y_offset + column;
        const int64_t from = backward ? y_index : input_index, to = backward ? input_index : y_index;
        if constexpr (width == 4) {
            const float4 value = *reinterpret_cast<const float4*>(source + from);
            float4* const target = reinterpret_cast<float4*>(destination + to);
            *target = backward ? add4(*target, value) : value;
        } else {
            destination[to] = backward ? destination[to] + source[from] : source[from];
        }
    }
}

}  // namespace ladon::cuda::elementwise
