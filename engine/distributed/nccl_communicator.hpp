#pragma once
// NCCL on device buffers, for the CUDA backend: one process per GPU, the GPU
// chosen by the local rank. MPI starts the processes and carries NCCL's
// unique id from rank 0 to the others; it also does the small host
// reductions (metric sums, present-label counts), which NCCL cannot do on
// host memory. Float collectives run on the communicator's stream and are
// synchronised before returning, so callers see a finished buffer.
#include <memory>

#include "engine/distributed/mpi_communicator.hpp"
#include "ladon/communicator.hpp"

namespace ladon::engine {

class NcclCommunicator final : public Communicator {
public:
    // Selects GPU local_rank() % device count, then creates the NCCL
    // communicator over all of `mpi`'s ranks.
    explicit NcclCommunicator(std::unique_ptr<MpiCommunicator> mpi);
    ~NcclCommunicator() override;
    NcclCommunicator(const NcclCommunicator&) = delete;
    NcclCommunicator& operator=(const NcclCommunicator&) = delete;

    int rank() const override { return mpi_->rank(); }
    int size() const override { return mpi_->size(); }
    int local_rank() const override { return mpi_->local_rank(); }
    std::string backend() const override { return "nccl"; }
    bool device_buffers() const override { return true; }
    int device() const { return device_; }

    void broadcast(float* device_data, int64_t count, int root = 0) override;
    void allreduce_sum(float* device_data, int64_t count) override;
    void allreduce_mean(float* device_data, int64_t count) override;
    void allreduce_sum(double* data, int64_t count) override { mpi_->allreduce_sum(data, count); }
    void allreduce_sum(int64_t* data, int64_t count) override { mpi_->allreduce_sum(data, count); }
    void barrier() override { mpi_->barrier(); }
    [[noreturn]] void abort(int code) override;

private:
    struct Handles;
    std::unique_ptr<MpiCommunicator> mpi_;
    std::unique_ptr<Handles> handles_;
    int device_ = 0;
};

// MPI, then NCCL on top of it. Throws if there is no CUDA device.
std::unique_ptr<NcclCommunicator> make_nccl_communicator();

}  // namespace ladon::engine
