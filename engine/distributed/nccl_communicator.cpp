#include "engine/distributed/nccl_communicator.hpp"

#include <cuda_runtime.h>
#include <fmt/format.h>
#include <nccl.h>

#include <algorithm>
#include <cstdlib>

#include "ladon/error.hpp"

namespace ladon::engine {

namespace {

void check_cuda(cudaError_t code, const char* call) {
    if (code != cudaSuccess) throw Error(fmt::format("distributed: {} failed: {}", call, cudaGetErrorString(code)));
}

void check_nccl(ncclResult_t code, const char* call) {
    if (code != ncclSuccess) throw Error(fmt::format("distributed: {} failed: {}", call, ncclGetErrorString(code)));
}

// NCCL counts are size_t, but keep slices bounded so one collective never
// outlives a reasonable watchdog on a huge buffer.
template <typename Call>
void in_slices(int64_t count, Call&& call) {
    constexpr int64_t slice = int64_t(1) << 30;
    for (int64_t begin = 0; begin < count; begin += slice) call(begin, std::size_t(std::min(slice, count - begin)));
}

}  // namespace

struct NcclCommunicator::Handles {
    ncclComm_t comm = nullptr;
    cudaStream_t stream = nullptr;
};

NcclCommunicator::NcclCommunicator(std::unique_ptr<MpiCommunicator> mpi)
    : mpi_(std::move(mpi)), handles_(std::make_unique<Handles>()) {
    int devices = 0;
    check_cuda(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
    if (devices == 0) throw Error("distributed: the NCCL communicator needs a CUDA device; this machine has none");
    device_ = mpi_->local_rank() % devices;
    check_cuda(cudaSetDevice(device_), "cudaSetDevice");
    ncclUniqueId id{};
    if (mpi_->rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    mpi_->broadcast_bytes(&id, sizeof(id));
    check_cuda(cudaStreamCreateWithFlags(&handles_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    check_nccl(ncclCommInitRank(&handles_->comm, mpi_->size(), id, mpi_->rank()), "ncclCommInitRank");
}

NcclCommunicator::~NcclCommunicator() {
    if (handles_->comm != nullptr) ncclCommDestroy(handles_->comm);
    if (handles_->stream != nullptr) cudaStreamDestroy(handles_->stream);
}

void NcclCommunicator::broadcast(float* device_data, int64_t count, int root) {
    in_slices(count, [&](int64_t begin, std::size_t n) {
        check_nccl(ncclBroadcast(device_data + begin, device_data + begin, n, ncclFloat32, root, handles_->comm,
                                 handles_->stream),
                   "ncclBroadcast");
    });
    check_cuda(cudaStreamSynchronize(handles_->stream), "cudaStreamSynchronize");
}

void NcclCommunicator::allreduce_sum(float* device_data, int64_t count) {
    in_slices(count, [&](int64_t begin, std::size_t n) {
        check_nccl(ncclAllReduce(device_data + begin, device_data + begin, n, ncclFloat32, ncclSum, handles_->comm,
                                 handles_->stream),
                   "ncclAllReduce");
    });
    check_cuda(cudaStreamSynchronize(handles_->stream), "cudaStreamSynchronize");
}

void NcclCommunicator::allreduce_mean(float* device_data, int64_t count) {
    in_slices(count, [&](int64_t begin, std::size_t n) {
        check_nccl(ncclAllReduce(device_data + begin, device_data + begin, n, ncclFloat32, ncclAvg, handles_->comm,
                                 handles_->stream),
                   "ncclAllReduce (avg)");
    });
    check_cuda(cudaStreamSynchronize(handles_->stream), "cudaStreamSynchronize");
}

void NcclCommunicator::abort(int code) {
    // ncclCommAbort stops this rank's outstanding NCCL work; MPI_Abort then
    // ends the other ranks, NCCL calls included.
    if (handles_->comm != nullptr) ncclCommAbort(handles_->comm);
    handles_->comm = nullptr;
    mpi_->abort(code);
    std::_Exit(code);  // not reached
}

std::unique_ptr<NcclCommunicator> make_nccl_communicator() {
    return std::make_unique<NcclCommunicator>(make_mpi_communicator());
}

}  // namespace ladon::engine
