#pragma once
// NCCL on device buffers, for the CUDA backend: one process per GPU, the GPU
// chosen by the caller (the trainer: local rank modulo the visible GPUs). A
// host communicator (MPI) starts the processes and carries NCCL's unique id
// from rank 0 to the others; it also does the small host reductions (metric
// sums, present-label counts), which NCCL cannot do on host memory.
//
// Float collectives run on the communicator's own stream and are waited for
// before returning, so callers see a finished buffer; or, after
// set_device_stream(s), on stream s without a wait, ordered with the work
// the caller enqueues there (the trainer's executor stream: its backward
// pass before the average, its update after).
#include <memory>
#include <string>

#include "engine/distributed/mpi_communicator.hpp"
#include "ladon/communicator.hpp"

namespace ladon::engine {

class NcclCommunicator final : public Communicator {
public:
    // Makes `device` the current CUDA device, then creates the NCCL
    // communicator over all of `host`'s ranks. Throws if libnccl.so.2
    // cannot be loaded (nccl_load_error() says why).
    NcclCommunicator(std::shared_ptr<Communicator> host, int device);
    ~NcclCommunicator() override;
    NcclCommunicator(const NcclCommunicator&) = delete;
    NcclCommunicator& operator=(const NcclCommunicator&) = delete;

    int rank() const override { return host_->rank(); }
    int size() const override { return host_->size(); }
    int local_rank() const override { return host_->local_rank(); }
    std::string backend() const override { return "nccl"; }
    bool device_buffers() const override { return true; }
    void set_device_stream(void* stream) override;
    int device() const { return device_; }

    void broadcast(float* device_data, int64_t count, int root = 0) override;
    void allreduce_sum(float* device_data, int64_t count) override;
    void allreduce_mean(float* device_data, int64_t count) override;
    // Buckets on the communicator's own stream: it waits for an event
    // recorded on `producer` (the caller's work up to here), then averages;
    // join(consumer) makes `consumer` wait for every bucket started so far
    // (null: the host waits). No host wait in between.
    void allreduce_mean_after(float* device_data, int64_t count, void* producer) override;
    void join(void* consumer) override;
    void allreduce_sum(double* data, int64_t count) override { host_->allreduce_sum(data, count); }
    void allreduce_sum(int64_t* data, int64_t count) override { host_->allreduce_sum(data, count); }
    void barrier() override { host_->barrier(); }
    [[noreturn]] void abort(int code) override;

private:
    // After enqueueing a collective: wait for it on the own stream, not on a
    // caller's.
    void finish(const char* what);

    struct Handles;
    std::shared_ptr<Communicator> host_;
    std::unique_ptr<Handles> handles_;
    int device_ = 0;
};

// Why libnccl.so.2 could not be loaded (dlopen's message, or a missing
// function); empty when it was. NCCL is loaded at run time, on first use, so
// that ladon runs where it is missing.
std::string nccl_load_error();

// The process group (MPI under a launcher, else this one process), then NCCL
// on top of it, on GPU local rank modulo the visible GPUs. Throws if there is
// no CUDA device or NCCL cannot be loaded.
std::unique_ptr<NcclCommunicator> make_nccl_communicator();

}  // namespace ladon::engine
