#include "engine/distributed/nccl_communicator.hpp"

#include <cuda_runtime.h>
#include <dlfcn.h>
#include <fmt/format.h>
#include <nccl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iterator>

#include "kernels/cuda/device_memory.hpp"
#include "ladon/error.hpp"

namespace ladon::engine {

namespace {

// NCCL is loaded at run time, not linked: a machine without it (a CPU
// machine, or a GPU one whose NCCL lives in a Python wheel not yet on
// LD_LIBRARY_PATH) still runs ladon, and data parallelism then goes through
// MPI and host memory. nccl.h gives the signatures; these are the only NCCL
// functions ladon calls.
struct NcclLibrary {
    decltype(&::ncclGetUniqueId) get_unique_id = nullptr;
    decltype(&::ncclCommInitRank) comm_init_rank = nullptr;
    decltype(&::ncclAllReduce) all_reduce = nullptr;
    decltype(&::ncclBroadcast) broadcast = nullptr;
    decltype(&::ncclCommAbort) comm_abort = nullptr;
    decltype(&::ncclCommDestroy) comm_destroy = nullptr;
    decltype(&::ncclGetErrorString) get_error_string = nullptr;
    std::string unavailable;  // why it could not be loaded; empty when loaded
};

// Looks `name` up; where it is missing, says so in `unavailable`.
template <typename Function>
bool resolve(void* handle, const char* name, Function& function, std::string& unavailable) {
    function = reinterpret_cast<Function>(dlsym(handle, name));
    if (function == nullptr) unavailable = fmt::format("libnccl.so.2 has no {}", name);
    return function != nullptr;
}

NcclLibrary load_nccl() {
    NcclLibrary nccl;
    // Once every function is found, never closed: NCCL's own threads
    // outlive any one communicator.
    void* handle = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        const char* reason = dlerror();
        nccl.unavailable = reason != nullptr ? reason : "dlopen(libnccl.so.2) failed";
        return nccl;
    }
    const bool all = resolve(handle, "ncclGetUniqueId", nccl.get_unique_id, nccl.unavailable) &&
                     resolve(handle, "ncclCommInitRank", nccl.comm_init_rank, nccl.unavailable) &&
                     resolve(handle, "ncclAllReduce", nccl.all_reduce, nccl.unavailable) &&
                     resolve(handle, "ncclBroadcast", nccl.broadcast, nccl.unavailable) &&
                     resolve(handle, "ncclCommAbort", nccl.comm_abort, nccl.unavailable) &&
                     resolve(handle, "ncclCommDestroy", nccl.comm_destroy, nccl.unavailable) &&
                     resolve(handle, "ncclGetErrorString", nccl.get_error_string, nccl.unavailable);
    if (!all) dlclose(handle);
    return nccl;
}

// Loaded on first use, once per process.
const NcclLibrary& nccl() {
    static const NcclLibrary library = load_nccl();
    return library;
}

// The loaded library; throws where it is missing.
const NcclLibrary& loaded_nccl() {
    const NcclLibrary& library = nccl();
    if (!library.unavailable.empty())
        throw Error(fmt::format("distributed: NCCL could not be loaded: {}", library.unavailable));
    return library;
}

void check_cuda(cudaError_t code, const char* call) {
    if (code != cudaSuccess) throw Error(fmt::format("distributed: {} failed: {}", call, cudaGetErrorString(code)));
}

void check_nccl(ncclResult_t code, const char* call) {
    if (code != ncclSuccess)
        throw Error(fmt::format("distributed: {} failed: {}", call, nccl().get_error_string(code)));
}

// NCCL counts are size_t, but keep slices bounded so one collective never
// outlives a reasonable watchdog on a huge buffer.
template <typename Call>
void in_slices(int64_t count, Call&& call) {
    constexpr int64_t slice = int64_t(1) << 30;
    for (int64_t begin = 0; begin < count; begin += slice) call(begin, std::size_t(std::min(slice, count - begin)));
}

// The in-place float allreduce every collective here is, on `stream`.
void all_reduce_in_place(float* data, int64_t count, ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream,
                         const char* what) {
    in_slices(count, [&](int64_t begin, std::size_t n) {
        check_nccl(nccl().all_reduce(data + begin, data + begin, n, ncclFloat32, op, comm, stream), what);
    });
}

}  // namespace

// The communicator goes (in ~NcclCommunicator) before the stream it uses.
struct NcclCommunicator::Handles {
    cuda::Stream own_stream;
    ncclComm_t comm = nullptr;
    cudaStream_t caller_stream = nullptr;  // set_device_stream's, or null
    // Buckets (allreduce_mean_after) run on own_stream, ordered by these:
    // `produced` recorded on the producer's stream before each bucket,
    // `averaged` on own_stream at join(). An event may be recorded again
    // once a wait on it is enqueued: the wait keeps the record it saw.
    cuda::Event produced, averaged;
    bool buckets_started = false;
    cudaStream_t stream() const { return caller_stream != nullptr ? caller_stream : own_stream.get(); }
};

NcclCommunicator::NcclCommunicator(std::shared_ptr<Communicator> host, int device)
    : host_(std::move(host)), handles_(std::make_unique<Handles>()), device_(device) {
    const NcclLibrary& library = loaded_nccl();
    int devices = 0;
    check_cuda(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
    if (devices == 0) throw Error("distributed: the NCCL communicator needs a CUDA device; this machine has none");
    if (device < 0 || device >= devices)
        throw Error(fmt::format("distributed: NCCL on cuda:{}, but this process sees {} CUDA device{}", device, devices,
                                devices == 1 ? "" : "s"));
    check_cuda(cudaSetDevice(device_), "cudaSetDevice");
    // The unique id from rank 0 to every rank through the host
    // communicator: as integers, whose sum (everyone else adds zeros) is an
    // exact copy.
    ncclUniqueId id{};
    static_assert(sizeof(id) % sizeof(int64_t) == 0);
    int64_t words[sizeof(id) / sizeof(int64_t)] = {};
    if (host_->rank() == 0) {
        check_nccl(library.get_unique_id(&id), "ncclGetUniqueId");
        std::memcpy(words, &id, sizeof(id));
    }
    host_->allreduce_sum(words, int64_t(std::size(words)));
    std::memcpy(&id, words, sizeof(id));
    handles_->own_stream = cuda::Stream(cudaStreamNonBlocking, "distributed: cudaStreamCreate");
    const ncclResult_t initialised = library.comm_init_rank(&handles_->comm, host_->size(), id, host_->rank());
    if (initialised != ncclSuccess) {
        // Two ranks on one GPU is the likely cause of an invalid usage here.
        throw Error(
            fmt::format("distributed: ncclCommInitRank failed on rank {} (local rank {}, cuda:{} of {}): {}; "
                        "NCCL needs one GPU per rank: start at most as many ranks per machine as it has "
                        "GPUs",
                        host_->rank(), host_->local_rank(), device_, devices, library.get_error_string(initialised)));
    }
}

NcclCommunicator::~NcclCommunicator() {
    if (handles_->comm != nullptr) nccl().comm_destroy(handles_->comm);
}

void NcclCommunicator::set_device_stream(void* stream) { handles_->caller_stream = static_cast<cudaStream_t>(stream); }

void NcclCommunicator::finish(const char* what) {
    if (handles_->caller_stream == nullptr) check_cuda(cudaStreamSynchronize(handles_->own_stream.get()), what);
}

void NcclCommunicator::broadcast(float* device_data, int64_t count, int root) {
    in_slices(count, [&](int64_t begin, std::size_t n) {
        check_nccl(nccl().broadcast(device_data + begin, device_data + begin, n, ncclFloat32, root, handles_->comm,
                                    handles_->stream()),
                   "ncclBroadcast");
    });
    finish("ncclBroadcast");
}

void NcclCommunicator::allreduce_sum(float* device_data, int64_t count) {
    all_reduce_in_place(device_data, count, ncclSum, handles_->comm, handles_->stream(), "ncclAllReduce");
    finish("ncclAllReduce");
}

void NcclCommunicator::allreduce_mean(float* device_data, int64_t count) {
    all_reduce_in_place(device_data, count, ncclAvg, handles_->comm, handles_->stream(), "ncclAllReduce (avg)");
    finish("ncclAllReduce (avg)");
}

void NcclCommunicator::allreduce_mean_after(float* device_data, int64_t count, void* producer) {
    Handles& h = *handles_;
    if (!h.produced) {
        h.produced = cuda::Event(cudaEventDisableTiming, "distributed: cudaEventCreate");
        h.averaged = cuda::Event(cudaEventDisableTiming, "distributed: cudaEventCreate");
    }
    check_cuda(cudaEventRecord(h.produced.get(), static_cast<cudaStream_t>(producer)), "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(h.own_stream.get(), h.produced.get(), 0), "cudaStreamWaitEvent");
    all_reduce_in_place(device_data, count, ncclAvg, h.comm, h.own_stream.get(), "ncclAllReduce (avg, bucket)");
    h.buckets_started = true;
}

void NcclCommunicator::join(void* consumer) {
    Handles& h = *handles_;
    if (!h.buckets_started) return;
    h.buckets_started = false;
    if (consumer == nullptr) {
        check_cuda(cudaStreamSynchronize(h.own_stream.get()), "ncclAllReduce (avg, buckets)");
        return;
    }
    check_cuda(cudaEventRecord(h.averaged.get(), h.own_stream.get()), "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(static_cast<cudaStream_t>(consumer), h.averaged.get(), 0), "cudaStreamWaitEvent");
}

void NcclCommunicator::abort(int code) {
    // ncclCommAbort stops this rank's outstanding NCCL work; MPI_Abort then
    // ends the other ranks, NCCL calls included.
    if (handles_->comm != nullptr) nccl().comm_abort(handles_->comm);
    handles_->comm = nullptr;
    host_->abort(code);
    std::_Exit(code);  // not reached
}

std::string nccl_load_error() { return nccl().unavailable; }

std::unique_ptr<NcclCommunicator> make_nccl_communicator() {
    loaded_nccl();  // before MPI starts: a missing library is the clearer error
    std::shared_ptr<Communicator> host = make_communicator();
    int devices = 0;
    check_cuda(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
    if (devices == 0) throw Error("distributed: the NCCL communicator needs a CUDA device; this machine has none");
    const int device = host->local_rank() % devices;
    return std::make_unique<NcclCommunicator>(std::move(host), device);
}

}  // namespace ladon::engine
