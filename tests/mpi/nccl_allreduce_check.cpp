// The NCCL communicator on a real GPU: broadcast and average a device buffer
// across the ranks mpirun started (one per GPU), and check the values.
// Prints "nccl allreduce: ok" on rank 0; exits non-zero on a mismatch, and
// reports a skip where no GPU is usable.
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "engine/distributed/nccl_communicator.hpp"
#include "kernels/cuda/device_memory.hpp"

int main() {
    // No usable GPU (none, or a driver older than the runtime): a skip, not
    // a failure, so that CI machines without a GPU pass.
    int devices = 0;
    if (const cudaError_t status = cudaGetDeviceCount(&devices); status != cudaSuccess || devices == 0) {
        std::printf("nccl allreduce: skipped, no usable GPU (%s)\n",
                    status != cudaSuccess ? cudaGetErrorString(status) : "no device");
        return 0;
    }
    try {
        auto group = ladon::engine::make_nccl_communicator();
        const int64_t count = (int64_t(1) << 20) + 3;  // not a multiple of any chunk size
        std::vector<float> host(count);
        for (int64_t i = 0; i < count; ++i) host[i] = float(group->rank() + 1) * float(i % 97);
        ladon::cuda::DeviceBuffer<float> device(host);
        group->allreduce_mean(device.get(), count);
        host = device.download();
        // Mean over ranks of (r + 1) * v is (N + 1) / 2 * v.
        const float factor = float(group->size() + 1) / 2.0f;
        int64_t wrong = 0;
        for (int64_t i = 0; i < count; ++i)
            if (std::abs(host[i] - factor * float(i % 97)) > 1e-4f * (1.0f + factor * float(i % 97))) ++wrong;
        double sum = double(wrong);
        group->allreduce_sum(&sum, 1);
        if (group->rank() == 0) {
            std::printf("nccl allreduce: %d ranks, device %d, %lld floats, %s\n", group->size(), group->device(),
                        static_cast<long long>(count), sum == 0 ? "ok" : "MISMATCH");
        }
        return sum == 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nccl allreduce: error: %s\n", e.what());
        return 1;
    }
}
