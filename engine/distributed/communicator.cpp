// The single-process communicator and the choice of communicator from the
// process environment.
#include "ladon/communicator.hpp"

#include <fmt/format.h>

#include <cstdlib>

#include "ladon/error.hpp"

#ifdef LADON_HAVE_MPI
#include "engine/distributed/mpi_communicator.hpp"
#endif
#ifdef LADON_HAVE_NCCL
#include "engine/distributed/nccl_communicator.hpp"
#endif

namespace ladon {

namespace {

class SingleProcessCommunicator final : public Communicator {
public:
    int rank() const override { return 0; }
    int size() const override { return 1; }
    int local_rank() const override { return 0; }
    std::string backend() const override { return "single"; }
    void broadcast(float*, int64_t, int) override {}
    void allreduce_sum(float*, int64_t) override {}
    void allreduce_mean(float*, int64_t) override {}
    void allreduce_sum(double*, int64_t) override {}
    void allreduce_sum(int64_t*, int64_t) override {}
    void barrier() override {}
    [[noreturn]] void abort(int code) override { std::_Exit(code); }
};

// The launcher's word for how many processes it started, or 0 outside one.
// OpenMPI sets OMPI_COMM_WORLD_SIZE; MPICH and Slurm's PMI set PMI_SIZE;
// PMIx launchers (srun --mpi=pmix, prterun) set PMIX_RANK.
int launched_size() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
        if (const char* value = std::getenv(name); value != nullptr && *value != '\0') return std::atoi(value);
    if (const char* value = std::getenv("PMIX_RANK"); value != nullptr && *value != '\0') return 1;
    return 0;
}

}  // namespace

std::unique_ptr<Communicator> make_single_process_communicator() {
    return std::make_unique<SingleProcessCommunicator>();
}

bool mpi_available() {
#ifdef LADON_HAVE_MPI
    return true;
#else
    return false;
#endif
}

bool nccl_available() { return nccl_unavailable_reason().empty(); }

std::string nccl_unavailable_reason() {
#ifdef LADON_HAVE_NCCL
    const std::string error = engine::nccl_load_error();
    return error.empty() ? error : "libnccl.so.2 could not be loaded (" + error + ")";
#else
    return "built without NCCL";
#endif
}

std::shared_ptr<Communicator> make_device_communicator(std::shared_ptr<Communicator> host_group, int device) {
#ifdef LADON_HAVE_NCCL
    if (nccl_available()) return std::make_shared<engine::NcclCommunicator>(std::move(host_group), device);
    (void)device;
    return host_group;
#else
    (void)device;
    return host_group;
#endif
}

std::unique_ptr<Communicator> make_communicator() {
    const int launched = launched_size();
    if (launched == 0) return make_single_process_communicator();
#ifdef LADON_HAVE_MPI
    return engine::make_mpi_communicator();
#else
    if (launched == 1) return make_single_process_communicator();
    throw Error(
        fmt::format("distributed: this process is one of {} started by an MPI launcher, but ladon was built "
                    "without MPI (install libopenmpi-dev and reconfigure)",
                    launched));
#endif
}

}  // namespace ladon
