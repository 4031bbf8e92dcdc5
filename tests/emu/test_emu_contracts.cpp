// What the emulator refuses that a GPU would fault on or refuse, each a
// kernel fault naming the kernel, block, thread and what was wrong: misused
// tensor-core and cp.async primitives, and shared memory over CUDA's limits.
// (Blocks above a kernel's __launch_bounds__: test_emu_samples.cpp.)
#include <cstdint>
#include <vector>

#include "emu/emu_test_support.hpp"
#include "kernels/cuda/tensor_core.cuh"

namespace ladon::emu_test {
namespace {

namespace tc = cuda::tensor_core;

enum class CopyMisuse { misaligned_destination, global_destination, host_source, misaligned_source, never_waited };

__global__ void misused_copy(CopyMisuse misuse, float* global) {
    LADON_SHARED(uint4, tile, [32]);
    auto* floats = reinterpret_cast<float*>(tile);
    float host[4] = {1, 2, 3, 4};
    const int i = static_cast<int>(threadIdx.x);
    switch (misuse) {
        case CopyMisuse::misaligned_destination:
            tc::cp_async<16>(floats + 4 * i + 1, global + 4 * i);
            break;
        case CopyMisuse::global_destination:
            tc::cp_async<16>(global + 4 * i, global);
            break;
        case CopyMisuse::host_source:
            tc::cp_async<4>(floats + i, host);
            break;
        case CopyMisuse::misaligned_source:
            tc::cp_async<8>(floats + 2 * i, global + 1);
            break;
        case CopyMisuse::never_waited:
            tc::cp_async<16>(floats + 4 * i, global + 4 * i);
            tc::cp_async_commit();
            return;
    }
    tc::cp_async_commit();
    tc::cp_async_wait<0>();
}

TEST(EmuContracts, CpAsyncAddressesAndPendingCopiesAreChecked) {
    DeviceBuffer<float> global(256);
    global.zero();
    const auto run = [&](CopyMisuse misuse) {
        return cuda::launch(misused_copy, dim3(1), dim3(32), 0, nullptr, misuse, global.get());
    };
    expect_kernel_fault(run(CopyMisuse::misaligned_destination),
                        {"misused_copy", "block (0,0,0), thread (", "cp.async of 16 bytes: destination", "is not aligned to 16"});
    expect_kernel_fault(run(CopyMisuse::global_destination), {"is not in the block's shared memory"});
    expect_kernel_fault(run(CopyMisuse::host_source), {"source", "is not inside one device or pinned allocation"});
    expect_kernel_fault(run(CopyMisuse::misaligned_source), {"cp.async of 8 bytes: source", "is not aligned to 8"});
    expect_kernel_fault(run(CopyMisuse::never_waited),
                        {"ended with 1 cp.async copies not waited for"});
}

// An mma whose A operand comes from shared memory nothing wrote.
__global__ void mma_on_unwritten_memory(float* output) {
    LADON_SHARED(float, never_written, [32]);
    const std::uint32_t a[4] = {tc::to_tf32(1.0f), tc::to_tf32(1.0f), tc::to_tf32(never_written[threadIdx.x]),
                                tc::to_tf32(1.0f)};
    const std::uint32_t b[2] = {tc::to_tf32(1.0f), tc::to_tf32(1.0f)};
    const float c[4] = {0, 0, 0, 0};
    float d[4];
    tc::mma_m16n8k8_tf32(d, a, b, c);
    output[threadIdx.x] = d[0];
}

TEST(EmuContracts, MmaOperandHoldingThePoisonIsAFault) {
    DeviceBuffer<float> output(32);
    expect_kernel_fault(cuda::launch(mma_on_unwritten_memory, dim3(1), dim3(32), 0, nullptr, output.get()),
                        {"mma_on_unwritten_memory", "thread (0,0,0)", "mma.sync.aligned.m16n8k8",
                         "A register 2 holds the poison pattern"});
}

// `lanes` threads run the mma; with `exiting_lane` < lanes that lane leaves first.
__global__ void partial_warp_mma(int exiting_lane, float* output) {
    if (static_cast<int>(threadIdx.x) == exiting_lane) return;
    const std::uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
    const float c[4] = {0, 0, 0, 0};
    float d[4];
    tc::mma_m16n8k8_tf32(d, a, b, c);
    output[threadIdx.x] = d[0];
}

TEST(EmuContracts, MmaNeedsEveryLaneOfAWholeWarp) {
    DeviceBuffer<float> output(64);
    expect_kernel_fault(cuda::launch(partial_warp_mma, dim3(1), dim3(16), 0, nullptr, -1, output.get()),
                        {"mma.sync.aligned.m16n8k8", "this warp has only 16 threads"});
    expect_kernel_fault(cuda::launch(partial_warp_mma, dim3(1), dim3(32), 0, nullptr, 5, output.get()),
                        {"waits in mma.sync.aligned.m16n8k8", "lane 5 (thread (5,0,0)) has exited without calling it"});
}

__global__ void ldmatrix_from(int offset_bytes, const float* global, std::uint32_t* output) {
    LADON_SHARED(uint4, tile, [32]);
    tile[threadIdx.x] = uint4{0, 0, 0, 0};
    __syncthreads();
    const void* row = offset_bytes < 0 ? static_cast<const void*>(global)
                                       : reinterpret_cast<const char*>(&tile[threadIdx.x]) + offset_bytes;
    std::uint32_t registers[1];
    tc::ldmatrix<1>(registers, row);
    output[threadIdx.x] = registers[0];
}

TEST(EmuContracts, LdmatrixRowAddressesAreChecked) {
    DeviceBuffer<float> global(64);
    DeviceBuffer<std::uint32_t> output(32);
    expect_kernel_fault(cuda::launch(ldmatrix_from, dim3(1), dim3(32), 0, nullptr, 4, global.get(), output.get()),
                        {"ldmatrix_from", "ldmatrix: row address", "is not 16-byte aligned"});
    expect_kernel_fault(cuda::launch(ldmatrix_from, dim3(1), dim3(32), 0, nullptr, -1, global.get(), output.get()),
                        {"is not in the block's shared memory"});
    EXPECT_CUDA_SUCCESS(cuda::launch(ldmatrix_from, dim3(1), dim3(32), 0, nullptr, 0, global.get(), output.get()));
}

// 40 KiB of static shared memory, plus the launch's dynamic bytes.
__global__ void large_static_tile(float* output) {
    LADON_SHARED(float, tile, [10240]);
    LADON_DYNAMIC_SHARED(float, extra);
    tile[threadIdx.x] = 1.0f;
    extra[threadIdx.x] = 2.0f;
    __syncthreads();
    output[threadIdx.x] = tile[threadIdx.x] + extra[threadIdx.x];
}

TEST(EmuContracts, StaticPlusDynamicSharedMemoryIsCheckedAgainstTheLimits) {
    DeviceBuffer<float> output(32);
    constexpr std::size_t dynamic_bytes = 16 * 1024;
    expect_kernel_fault(
        cuda::launch(large_static_tile, dim3(1), dim3(32), dynamic_bytes, nullptr, output.get()),
        {"large_static_tile", "40960 bytes of static and 16384 bytes of dynamic shared memory exceed the 49152 bytes"});

    // Opting in to the dynamic bytes makes the launch legal, as on a GPU.
    ASSERT_CUDA_SUCCESS(
        cudaFuncSetAttribute(large_static_tile, cudaFuncAttributeMaxDynamicSharedMemorySize, int{dynamic_bytes}));
    ASSERT_CUDA_SUCCESS(cuda::launch(large_static_tile, dim3(1), dim3(32), dynamic_bytes, nullptr, output.get()));
    EXPECT_EQ(3.0f, output.download()[0]);
    const auto use = emu::shared_memory_use(large_static_tile);
    ASSERT_TRUE(use.has_value());
    EXPECT_EQ(40960u, use->static_bytes);
    EXPECT_EQ(dynamic_bytes, use->dynamic_bytes);
    EXPECT_EQ(4, use->blocks_per_sm);  // 228 KiB / (40 + 16 + 1 KiB reserved)
}

__global__ void scale(float* values, float factor) {
    if (values != nullptr) values[threadIdx.x] *= factor;
}

TEST(EmuContracts, PointerArgumentsMustAddressDeviceOrPinnedMemory) {
    std::vector<float> host(32, 1.0f);
    expect_kernel_fault(cuda::launch(scale, dim3(1), dim3(32), 0, nullptr, host.data(), 2.0f),
                        {"kernel ladon::emu_test::", "scale(float*, float)", "pointer argument 1",
                         "lies in no device or pinned allocation"});
    EXPECT_EQ(1.0f, host[0]) << "the kernel did not run";

    DeviceBuffer<float> device(32);
    device.zero();
    EXPECT_CUDA_SUCCESS(cuda::launch(scale, dim3(1), dim3(32), 0, nullptr, device.get(), 2.0f));
    EXPECT_CUDA_SUCCESS(cuda::launch(scale, dim3(1), dim3(32), 0, nullptr, static_cast<float*>(nullptr), 2.0f));
    float* pinned = nullptr;
    ASSERT_CUDA_SUCCESS(cudaMallocHost(reinterpret_cast<void**>(&pinned), 32 * sizeof(float)));
    for (int i = 0; i < 32; ++i) pinned[i] = 1.0f;
    EXPECT_CUDA_SUCCESS(cuda::launch(scale, dim3(1), dim3(32), 0, nullptr, pinned, 2.0f));
    EXPECT_EQ(2.0f, pinned[31]);
    ASSERT_CUDA_SUCCESS(cudaFreeHost(pinned));
    float* freed = nullptr;
    ASSERT_CUDA_SUCCESS(cudaMalloc(reinterpret_cast<void**>(&freed), 32 * sizeof(float)));
    ASSERT_CUDA_SUCCESS(cudaFree(freed));
    expect_kernel_fault(cuda::launch(scale, dim3(1), dim3(32), 0, nullptr, freed, 2.0f), {"pointer argument 1"});
}

}  // namespace
}  // namespace ladon::emu_test
