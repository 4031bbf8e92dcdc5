#pragma once
// The processes that train one model together (data parallelism): each rank
// computes gradients on its shard of every global batch, and the ranks
// average them (in one collective, or in buckets during the backward pass).
// MPI starts and connects the processes (`mpirun -np N ladon train ...`); a
// process started without a launcher is one rank of one and pays nothing
// for it.
//
// Collectives are in place and blocking (but see set_device_stream and
// allreduce_mean_after). Float
// buffers live where the communicator says (`device_buffers()`: GPU memory
// for NCCL, host memory otherwise); double and integer buffers, for metrics
// and counts, are always host memory. Every rank must call the same
// collectives in the same order.
#include <cstdint>
#include <memory>
#include <string>

namespace ladon {

class Communicator {
public:
    virtual ~Communicator() = default;

    virtual int rank() const = 0;  // 0 .. size()-1; rank 0 prints, logs and checkpoints
    virtual int size() const = 0;
    virtual int local_rank() const = 0;       // among the ranks on this machine: picks the GPU
    virtual std::string backend() const = 0;  // "single", "mpi", "nccl"
    virtual bool device_buffers() const { return false; }
    // Device communicators: the stream (a cudaStream_t) float collectives
    // are enqueued on. Null, the default: the communicator's own, waited for
    // before each collective returns. Set: ordered after the work already
    // enqueued on that stream and before what follows, returning without a
    // wait (the data-parallel trainer sets its executor's stream, so that the
    // gradient average costs the step no extra host wait). Ignored by host
    // communicators.
    virtual void set_device_stream(void* /*stream*/) {}

    // Copies root's `count` floats into every rank's buffer.
    virtual void broadcast(float* data, int64_t count, int root = 0) = 0;
    // Element-wise sum over the ranks; every rank gets the same result.
    virtual void allreduce_sum(float* data, int64_t count) = 0;
    // Element-wise mean over the ranks (the sum, then times 1/size()).
    virtual void allreduce_mean(float* data, int64_t count) = 0;
    // Bucketed means, overlapped with the work that produces them (the
    // data-parallel trainer averages its gradients so, a bucket at a time
    // during the backward pass): allreduce_mean_after() starts the mean of
    // `count` floats, ordered after the work enqueued so far on `producer`
    // (device communicators: a cudaStream_t; host memory is final when
    // called); progress() lets the started ones advance (call it between
    // pieces of work); join() finishes them all: host communicators return
    // with the means in place, device communicators make `consumer` (a
    // cudaStream_t) wait for them. Each result has the bits allreduce_mean()
    // gives the same elements. Every rank must start the same buckets in the
    // same order. The defaults run the blocking allreduce_mean() at once.
    virtual void allreduce_mean_after(float* data, int64_t count, void* /*producer*/) { allreduce_mean(data, count); }
    virtual void progress() {}
    virtual void join(void* /*consumer*/) {}
    virtual void allreduce_sum(double* data, int64_t count) = 0;   // host memory
    virtual void allreduce_sum(int64_t* data, int64_t count) = 0;  // host memory
    virtual void barrier() = 0;
    // Ends every rank's process with `code` (MPI_Abort): what a rank that
    // failed calls, so that its peers do not wait for it forever.
    [[noreturn]] virtual void abort(int code) = 0;

    bool leader() const { return rank() == 0; }
};

// One process alone: every collective is the identity.
std::unique_ptr<Communicator> make_single_process_communicator();

// The communicator of this process, from its environment: under an MPI
// launcher (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK set) MPI on host
// buffers; otherwise one process alone, without initialising MPI. Throws if
// the process was launched by mpirun but ladon was built without MPI. At most
// one MPI communicator exists per process (MPI cannot be initialised twice).
std::unique_ptr<Communicator> make_communicator();

// Whether this build has the MPI communicator.
bool mpi_available();

// Whether NCCL can be used: this build has the NCCL communicator (MPI, the
// CUDA toolkit and nccl.h were found when it was configured) and
// libnccl.so.2 loads here (it is opened at run time, not linked).
bool nccl_available();

// Why nccl_available() is false, in a few words; empty when it is true.
std::string nccl_unavailable_reason();

// The communicator for data-parallel training on CUDA device `device` with
// host_group's ranks: NCCL over the same ranks where nccl_available()
// (float collectives then take device memory, and the rank's current device
// becomes `device`), else host_group itself, whose float collectives the
// trainer stages through host memory. host_group stays in use (it carries
// NCCL's unique id, the host reductions and abort()).
std::shared_ptr<Communicator> make_device_communicator(std::shared_ptr<Communicator> host_group, int device);

}  // namespace ladon
