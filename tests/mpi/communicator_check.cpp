// The communicator of this process (make_communicator) under `mpirun -np N`
// or alone: rank and size agree with the launcher, and every collective gives
// the values a reader can work out by hand. Prints "communicator: ok" on
// rank 0; exits 1 on any mismatch.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ladon/communicator.hpp"
#include "ladon/error.hpp"

namespace {

int failures = 0;

void expect(bool condition, const std::string& what, int rank) {
    if (condition) return;
    std::fprintf(stderr, "communicator: rank %d: %s\n", rank, what.c_str());
    ++failures;
}

}  // namespace

int main() {
    try {
        const auto group = ladon::make_communicator();
        const int rank = group->rank(), size = group->size();
        const char* launched = std::getenv("OMPI_COMM_WORLD_SIZE");
        expect(size == (launched != nullptr ? std::atoi(launched) : 1), "size differs from the launcher's", rank);
        expect(group->local_rank() >= 0 && group->local_rank() <= rank, "local rank out of range", rank);

        // Broadcast: rank 0's values everywhere.
        std::vector<float> values(1000);
        for (std::size_t i = 0; i < values.size(); ++i) values[i] = rank == 0 ? float(i) : -1.0f;
        group->broadcast(values.data(), int64_t(values.size()));
        for (std::size_t i = 0; i < values.size(); ++i) expect(values[i] == float(i), "broadcast", rank);

        // Sums and means: rank r contributes r + 1, so the sum is N(N+1)/2.
        const double sum = size * (size + 1) / 2.0;
        std::vector<float> floats(4097, float(rank + 1));
        group->allreduce_sum(floats.data(), int64_t(floats.size()));
        for (float f : floats) expect(f == float(sum), "float sum", rank);
        std::vector<float> means(3, float(rank + 1));
        group->allreduce_mean(means.data(), int64_t(means.size()));
        for (float m : means) expect(std::abs(m - float(sum / size)) < 1e-6f, "float mean", rank);
        double d[2] = {double(rank + 1), 0.5};
        group->allreduce_sum(d, 2);
        expect(d[0] == sum && d[1] == 0.5 * size, "double sum", rank);
        int64_t counts[2] = {int64_t(rank + 1), int64_t(1) << 40};
        group->allreduce_sum(counts, 2);
        expect(counts[0] == int64_t(sum) && counts[1] == size * (int64_t(1) << 40), "int64 sum", rank);
        group->barrier();

        double failed = failures;
        group->allreduce_sum(&failed, 1);
        if (rank == 0)
            std::printf("communicator: %s, %d ranks, %s\n", group->backend().c_str(), size,
                        failed == 0 ? "ok" : "FAILED");
        return failed == 0 ? 0 : 1;
    } catch (const ladon::Error& e) {
        std::fprintf(stderr, "communicator: error: %s\n", e.what());
        return 1;
    }
}
