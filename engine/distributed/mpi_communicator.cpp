#include "engine/distributed/mpi_communicator.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>
#include <vector>

#include "ladon/error.hpp"

namespace ladon::engine {

namespace {

void check(int code, const char* call) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING] = {};
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw Error(fmt::format("distributed: {} failed: {}", call, text));
}

// MPI counts are int: a buffer past 2^31 - 1 elements goes in slices.
template <typename Call>
void in_slices(int64_t count, Call&& call) {
    constexpr int64_t slice = INT_MAX;
    for (int64_t begin = 0; begin < count; begin += slice) call(begin, int(std::min(slice, count - begin)));
}

}  // namespace

struct MpiCommunicator::Outstanding {
    std::vector<MPI_Request> requests;
    std::vector<std::pair<float*, int64_t>> means;  // scaled by 1/size once summed
};

MpiCommunicator::MpiCommunicator() : outstanding_(std::make_unique<Outstanding>()) {
    int initialised = 0;
    check(MPI_Initialized(&initialised), "MPI_Initialized");
    if (!initialised) {
        int provided = 0;
        check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
        finalize_ = true;
    }
    // Errors come back as codes (and so as ladon::Error) instead of
    // MPI_ERRORS_ARE_FATAL's immediate exit without our message.
    check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    // The local rank: this rank's index among those sharing its memory (its
    // machine), portable across launchers, unlike OMPI_COMM_WORLD_LOCAL_RANK.
    MPI_Comm local = MPI_COMM_NULL;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local),
          "MPI_Comm_split_type");
    check(MPI_Comm_rank(local, &local_rank_), "MPI_Comm_rank (local)");
    MPI_Comm_free(&local);
}

MpiCommunicator::~MpiCommunicator() {
    if (!finalize_) return;
    // Unwinding from an exception with peers possibly inside a collective:
    // MPI_Finalize would wait for them forever, so end the whole job instead.
    if (std::uncaught_exceptions() > 0 && size_ > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised) MPI_Finalize();
}

void MpiCommunicator::broadcast(float* data, int64_t count, int root) {
    in_slices(count, [&](int64_t begin, int n) {
        check(MPI_Bcast(data + begin, n, MPI_FLOAT, root, MPI_COMM_WORLD), "MPI_Bcast");
    });
}

void MpiCommunicator::broadcast_bytes(void* data, std::size_t bytes, int root) {
    in_slices(int64_t(bytes), [&](int64_t begin, int n) {
        check(MPI_Bcast(static_cast<char*>(data) + begin, n, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    });
}

void MpiCommunicator::allreduce_sum(float* data, int64_t count) {
    in_slices(count, [&](int64_t begin, int n) {
        check(MPI_Allreduce(MPI_IN_PLACE, data + begin, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    });
}

void MpiCommunicator::allreduce_mean(float* data, int64_t count) {
    allreduce_sum(data, count);
    const float scale = 1.0f / float(size_);
    for (int64_t i = 0; i < count; ++i) data[i] *= scale;
}

void MpiCommunicator::allreduce_mean_after(float* data, int64_t count, void* /*producer*/) {
    in_slices(count, [&](int64_t begin, int n) {
        MPI_Request request = MPI_REQUEST_NULL;
        check(MPI_Iallreduce(MPI_IN_PLACE, data + begin, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &request),
              "MPI_Iallreduce");
        outstanding_->requests.push_back(request);
    });
    outstanding_->means.emplace_back(data, count);
}

void MpiCommunicator::progress() {
    std::vector<MPI_Request>& requests = outstanding_->requests;
    if (requests.empty()) return;
    int done = 0;
    check(MPI_Testall(int(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE), "MPI_Testall");
}

void MpiCommunicator::join(void* /*consumer*/) {
    std::vector<MPI_Request>& requests = outstanding_->requests;
    if (!requests.empty())
        check(MPI_Waitall(int(requests.size()), requests.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
    requests.clear();
    // As allreduce_mean(): the sum times 1/size, element by element, so a
    // mean in buckets has the bits of the mean in one piece.
    const float scale = 1.0f / float(size_);
    for (auto [data, count] : outstanding_->means)
        for (int64_t i = 0; i < count; ++i) data[i] *= scale;
    outstanding_->means.clear();
}

void MpiCommunicator::allreduce_sum(double* data, int64_t count) {
    in_slices(count, [&](int64_t begin, int n) {
        check(MPI_Allreduce(MPI_IN_PLACE, data + begin, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    });
}

void MpiCommunicator::allreduce_sum(int64_t* data, int64_t count) {
    in_slices(count, [&](int64_t begin, int n) {
        check(MPI_Allreduce(MPI_IN_PLACE, data + begin, n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    });
}

void MpiCommunicator::barrier() { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

void MpiCommunicator::abort(int code) {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

std::unique_ptr<MpiCommunicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

}  // namespace ladon::engine
