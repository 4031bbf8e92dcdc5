#pragma once
// Per-channel reductions over an NCHW tensor [batch, channels, spatial]:
// the parallel decomposition batch norm and the conv bias gradient share.
//
// Channel c's batch x spatial values, counted in Width-float vectors
// ("units": Width = 4 when a plane holds a multiple of 4 floats and every
// pointer is 16-byte aligned), are cut into blocks_per_channel equal chunks;
// block (blockIdx.x, blockIdx.y) owns chunk blockIdx.y of channel blockIdx.x.
// A reduction is two launches: each block sums its chunk into per-block
// partials ([channel][block][sum], in a workspace), then a second kernel adds
// a channel's partials in a fixed order. No float atomics: the order, and so
// the result, is fixed by the shape and the alignment.
//
// The split is fixed by the shape, not the device: enough blocks over all
// channels to fill 132 SMs four times, none with fewer than
// threads_per_block x unroll units.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "kernels/cuda/device.hpp"
#include "kernels/cuda/fast_divisor.hpp"

namespace ladon::cuda::channel_reduce {

// A power of two (block_sum halves it).
constexpr int threads_per_block = 256;
// Units each thread loads before it adds any: the loads in flight.
constexpr int unroll = 4;

// One launch's split of the tensor (make_layout). All indices count units
// and fit in 32 bits (fits() refuses larger tensors).
struct Layout {
    int channels;
    int plane_units;    // per (sample, channel) plane
    FastDivisor plane;  // divides by plane_units
    int sample_stride;  // channels * plane_units
    int per_channel;    // batch * plane_units
    int chunk;          // units per block
    int blocks_per_channel;
    float count;  // values per channel
};

template <int Width>
struct Vector;
template <>
struct Vector<1> {
    using type = float;
};
template <>
struct Vector<4> {
    using type = float4;
};
template <int Width>
using vector_t = typename Vector<Width>::type;

__device__ __forceinline__ float lane(const float& v, int) { return v; }
__device__ __forceinline__ float lane(const float4& v, int i) {
    return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}
__device__ __forceinline__ float& lane(float& v, int) { return v; }
__device__ __forceinline__ float& lane(float4& v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }

// The unit offset of unit j of channel c: sample j / plane_units.
__device__ __forceinline__ int unit_offset(const Layout& l, int c, int j) {
    int sample, position;
    l.plane.divide(static_cast<std::uint32_t>(j), sample, position);
    return sample * l.sample_stride + c * l.plane_units + position;
}

// The sum of every thread's `value`, returned to every thread: a fixed
// shared-memory tree (halving strides). Every thread of the block must call
// it; it ends with a barrier, so `scratch` may be reused at once.
__device__ __forceinline__ float block_sum(float value, float* scratch) {
    const int t = int(threadIdx.x);
    scratch[t] = value;
    __syncthreads();
    for (int stride = threads_per_block / 2; stride > 0; stride /= 2) {
        if (t < stride) scratch[t] += scratch[t + stride];
        __syncthreads();
    }
    const float total = scratch[0];
    __syncthreads();
    return total;
}

// A channel's partials, [blocks_per_channel][Sums] from `partials`, summed
// pairwise in a fixed order by one warp and returned to every thread.
template <int Sums>
__device__ __forceinline__ void channel_totals(const Layout& l, const float* __restrict__ partials, float* totals,
                                               float* shared) {
    if (threadIdx.x < 32) {
        for (int s = 0; s < Sums; ++s) {
            float v = 0.0f;
            for (int b = int(threadIdx.x); b < l.blocks_per_channel; b += 32) v += partials[b * Sums + s];
            for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
            if (threadIdx.x == 0) shared[s] = v;
        }
    }
    __syncthreads();
    for (int s = 0; s < Sums; ++s) totals[s] = shared[s];
    __syncthreads();
}

// This block's chunk of units [begin, end) of its channel.
struct Chunk {
    int begin, end;
};
__device__ __forceinline__ Chunk block_chunk(const Layout& l) {
    const int begin = int(blockIdx.y) * l.chunk;
    const int end = begin + l.chunk < l.per_channel ? begin + l.chunk : l.per_channel;
    return {begin, end};
}

// Calls visit(offset) for each unit of the block's chunk, `unroll` units per
// thread per step, the offsets of a step computed before any visit (so the
// caller's loads of a step are all in flight together).
template <typename Visit>
__device__ __forceinline__ void for_each_unit(const Layout& l, int c, Chunk chunk, Visit&& visit) {
    constexpr int step = threads_per_block * unroll;
    for (int base = chunk.begin + int(threadIdx.x); base < chunk.end; base += step) {
        int offsets[unroll];
#pragma unroll
        for (int u = 0; u < unroll; ++u) {
            const int j = base + u * threads_per_block;
            offsets[u] = j < chunk.end ? unit_offset(l, c, j) : -1;
        }
        visit(offsets);
    }
}

// v[u] = in[offsets[u]] for the step's units inside the chunk (for_each_unit
// marks the others -1); those stay as they were (zero-initialised by callers).
template <typename V>
__device__ __forceinline__ void load_units(const V* __restrict__ in, const int* offsets, V (&v)[unroll]) {
#pragma unroll
    for (int u = 0; u < unroll; ++u)
        if (offsets[u] >= 0) v[u] = in[offsets[u]];
}

// Pass 1 of a channel sum: each block's sum of its chunk into
// partials[channel][block], or, with Direct (one block per channel), added
// straight into out[channel].
template <int Width, bool Direct>
__global__ void __launch_bounds__(threads_per_block)
    chunk_sums_kernel(Layout l, const float* __restrict__ x, float* __restrict__ partials_or_out) {
    LADON_SHARED(float, scratch, [threads_per_block]);
    using V = vector_t<Width>;
    const int c = int(blockIdx.x);
    const V* __restrict__ in = reinterpret_cast<const V*>(x);
    float sum[Width * unroll] = {};
    for_each_unit(l, c, block_chunk(l), [&](const int* offsets) {
        V v[unroll] = {};
        load_units(in, offsets, v);
#pragma unroll
        for (int u = 0; u < unroll; ++u)
#pragma unroll
            for (int i = 0; i < Width; ++i) sum[u * Width + i] += lane(v[u], i);  // 0 past the chunk
    });
#pragma unroll
    for (int half = Width * unroll / 2; half > 0; half /= 2)
#pragma unroll
        for (int i = 0; i < half; ++i) sum[i] += sum[i + half];
    const float total = block_sum(sum[0], scratch);
    if (threadIdx.x != 0) return;
    if (Direct)
        partials_or_out[c] += total;
    else
        partials_or_out[c * l.blocks_per_channel + int(blockIdx.y)] = total;
}

// Pass 2: out[c] += the channel's partials, one thread per channel, added
// in block order. (A template only so two files may include it.)
template <int Unused = 0>
__global__ void __launch_bounds__(threads_per_block)
    add_channel_totals_kernel(int channels, int blocks_per_channel, const float* __restrict__ partials,
                              float* __restrict__ out) {
    const int c = int(blockIdx.x) * threads_per_block + int(threadIdx.x);
    if (c >= channels) return;
    float total = 0.0f;
    for (int b = 0; b < blocks_per_channel; ++b) total += partials[c * blocks_per_channel + b];
    out[c] += total;
}

// ---------------------------------------------------------------- host side

constexpr int64_t target_blocks = 4 * 132;
constexpr int64_t min_units_per_block = int64_t{threads_per_block} * unroll;

// Non-negative sizes whose tensor has fewer than 2^31 values.
inline bool fits(int64_t batch, int64_t channels, int64_t spatial) {
    if (batch < 0 || channels < 0 || spatial < 0) return false;
    const auto limit = int64_t{std::numeric_limits<int32_t>::max()};
    if (channels > limit || spatial > limit) return false;
    return channels == 0 || spatial == 0 || batch <= limit / channels / spatial;
}

// max_blocks_per_channel: 1 where there is no workspace for partials.
inline Layout make_layout(int64_t batch, int64_t channels, int64_t spatial, int width,
                          int64_t max_blocks_per_channel = target_blocks) {
    Layout l{};
    l.channels = int(channels);
    l.plane_units = int(spatial / width);
    l.plane = FastDivisor(static_cast<std::uint32_t>(std::max(l.plane_units, 1)));
    l.sample_stride = int(channels) * l.plane_units;
    l.per_channel = int(batch) * l.plane_units;
    const int64_t wanted = (target_blocks + channels - 1) / std::max<int64_t>(channels, 1);
    const int64_t useful = (l.per_channel + min_units_per_block - 1) / min_units_per_block;
    const int64_t blocks = std::max<int64_t>(1, std::min({wanted, useful, max_blocks_per_channel}));
    l.chunk = int(std::max<int64_t>(1, (l.per_channel + blocks - 1) / blocks));
    l.blocks_per_channel = std::max(1, (l.per_channel + l.chunk - 1) / l.chunk);
    l.count = float(batch * spatial);
    return l;
}

inline dim3 grid(const Layout& l) { return dim3(unsigned(l.channels), unsigned(l.blocks_per_channel)); }

inline bool aligned(const float* p) { return p == nullptr || reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

// 4 when planes are a multiple of 4 floats and every pointer is 16-byte aligned.
template <typename... Pointers>
int vector_width(int64_t spatial, Pointers... pointers) {
    return spatial % 4 == 0 && (aligned(pointers) && ...) ? 4 : 1;
}

// run(std::integral_constant<int, W>{}) with the width W as a constant.
template <typename Run>
cudaError_t with_width(int width, Run&& run) {
    if (width == 4) return run(std::integral_constant<int, 4>{});
    return run(std::integral_constant<int, 1>{});
}

}  // namespace ladon::cuda::channel_reduce
