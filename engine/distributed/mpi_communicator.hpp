#pragma once
// MPI on host buffers: the CPU backend's communicator, and the fallback for
// GPUs without NCCL (the caller then stages gradients through host memory).
// Initialises MPI on construction (MPI_THREAD_FUNNELED: only the thread that
// made it calls MPI; OpenMP workers never do) and finalises it on
// destruction. MPI_COMM_WORLD gets MPI_ERRORS_RETURN, so a failed call is a
// ladon::Error naming the call, not a silent exit.
#include <cstddef>
#include <memory>

#include "ladon/communicator.hpp"

namespace ladon::engine {

class MpiCommunicator : public Communicator {
public:
    MpiCommunicator();
    ~MpiCommunicator() override;
    MpiCommunicator(const MpiCommunicator&) = delete;
    MpiCommunicator& operator=(const MpiCommunicator&) = delete;

    int rank() const override { return rank_; }
    int size() const override { return size_; }
    int local_rank() const override { return local_rank_; }
    std::string backend() const override { return "mpi"; }

    void broadcast(float* data, int64_t count, int root = 0) override;
    void allreduce_sum(float* data, int64_t count) override;
    void allreduce_mean(float* data, int64_t count) override;
    // Nonblocking MPI_Iallreduce per bucket; progress() is MPI_Testall
    // (OpenMPI's shared-memory transport has no progress thread: a started
    // reduction advances only inside MPI calls); join() is MPI_Waitall, then
    // the 1/size() scaling of allreduce_mean().
    void allreduce_mean_after(float* data, int64_t count, void* producer) override;
    void progress() override;
    void join(void* consumer) override;
    void allreduce_sum(double* data, int64_t count) override;
    void allreduce_sum(int64_t* data, int64_t count) override;
    void barrier() override;
    [[noreturn]] void abort(int code) override;

    // Raw bytes from root to every rank (the NCCL unique id travels so).
    void broadcast_bytes(void* data, std::size_t bytes, int root = 0);

private:
    struct Outstanding;  // the started means (MPI types stay in the .cpp)
    std::unique_ptr<Outstanding> outstanding_;
    int rank_ = 0, size_ = 1, local_rank_ = 0;
    bool finalize_ = false;  // we initialised MPI, so we finalise it
};

std::unique_ptr<MpiCommunicator> make_mpi_communicator();

}  // namespace ladon::engine
