#pragma once
// Which backends this build has and which CUDA devices the machine shows.
#include <cstdint>
#include <string>
#include <vector>

#include "ladon/training.hpp"

namespace ladon {

struct CudaDevice {
    int index = 0;
    std::string name;
    int64_t memory_bytes = 0;
    int major = 0, minor = 0;  // compute capability
};

struct CudaAvailability {
    bool compiled = false;            // the CUDA backend is in this build
    std::vector<CudaDevice> devices;  // empty: see `reason`
    std::string reason;               // why there is none ("no CUDA device (cudaErrorNoDevice: ...)")
};
CudaAvailability cuda_availability();

// Resolves a device ("auto", "cpu", "cuda" or "cuda:N") into options.backend
// and options.cuda_device. "auto" takes cuda:0 when there is one, else the
// CPU; "cuda" without a device (or a build without the backend) throws
// ladon::Error saying why. Returns one line that says what was chosen.
std::string choose_device(const std::string& device, TrainerOptions& options);

// The same for one of `ranks` data-parallel processes, `local_rank` among
// those on its machine (Communicator::local_rank()): one process per GPU.
// With one rank, exactly choose_device. With several, "auto" (when a GPU is
// visible) and "cuda" take GPU local_rank modulo the visible GPUs, so N ranks
// on a machine with N GPUs get one each (and a launcher that shows each rank
// only its own GPU gets that one); "cpu", and "auto" without a GPU, the CPU.
// An explicit "cuda:N" is an error: every rank would take GPU N (choose the
// GPUs with CUDA_VISIBLE_DEVICES instead).
std::string choose_rank_device(const std::string& device, int ranks, int local_rank, TrainerOptions& options);

}  // namespace ladon
