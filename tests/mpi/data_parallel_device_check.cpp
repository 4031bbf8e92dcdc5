// Data parallelism with the CUDA executor: the ranks mpirun started, each on
// rows [r·B/N, (r+1)·B/N) of every global batch of B, reach after K steps the
// parameters and optimizer state of ONE process with batch B on the CPU
// executor, within a relative tolerance; and every rank ends with rank 0's
// bits. About a third of each head's labels are missing (masks), so the
// ranks' present counts differ and the head-gradient weighting N·P_r/P
// (Executor::scale_head_gradient) and the learned task weights' gradients
// (set_task_weighting_losses) decide the result: without them the ranks train
// on another loss and miss by far more than the tolerance.
//
//   data_parallel_device_check MODE TOLERANCE [BUCKET_BYTES]
//     host    MPI on host buffers: the CUDA executor's gradients pulled to
//             the host, averaged, pushed back (MPI without NCCL)
//     device  the same MPI presented as a device communicator: the NCCL code
//             path (device buffers, collectives on the executor's stream);
//             on the emulator device memory is host memory, so MPI can run it
//     nccl    make_device_communicator: NCCL on a real GPU
//
// With BUCKET_BYTES > 0 each run is trained a second time with the
// gradients averaged in buckets of that size during the backward pass
// (training.allreduce_bucket_mb), and must end with the bits of the run in
// one collective: several buckets in `device` mode (NCCL's path) and in
// `nccl` mode, one collective still in `host` mode (staged through the host).
//
// Built against the emulated CUDA executor (LADON_EMU, label cpu;mpi) and
// against libladon's real one (label gpu: skipped without a usable GPU).
// Prints "data parallel device check: ... ok" on rank 0; exits 1 otherwise.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/cpu_executor.hpp"
#include "engine/distributed/data_parallel.hpp"
#include "engine/executor.hpp"
#include "ladon/communicator.hpp"
#include "ladon/device.hpp"
#include "ladon/error.hpp"
#include "ladon/model.hpp"
#if defined(LADON_EMU)
#include "engine/cuda_executor.hpp"
#endif

namespace {

using ladon::Communicator;
using ladon::OptimizerOptions;
using namespace ladon::engine;

constexpr int64_t global_batch = 12;
constexpr int steps = 8;

// MPI as a device communicator (mode `device`), recording what DataParallel
// hands it: the stream it orders collectives on and the buffer it averages.
class DeviceBuffersOverHost final : public Communicator {
public:
    explicit DeviceBuffersOverHost(std::shared_ptr<Communicator> host) : host_(std::move(host)) {}
    int rank() const override { return host_->rank(); }
    int size() const override { return host_->size(); }
    int local_rank() const override { return host_->local_rank(); }
    std::string backend() const override { return "mpi as device"; }
    bool device_buffers() const override { return true; }
    void set_device_stream(void* stream) override {
        stream_ = stream;
        if (stream != nullptr) ++streams_set_;
    }
    void broadcast(float* data, int64_t count, int root) override { host_->broadcast(data, count, root); }
    void allreduce_sum(float* data, int64_t count) override { host_->allreduce_sum(data, count); }
    // Device memory is host memory on the emulator, but the executor's
    // stream runs its queued work only when something waits for it (as a
    // GPU's may still be running): MPI reads the buffer after the producer's
    // work, as NCCL would order it after an event on that stream.
    void allreduce_mean(float* data, int64_t count) override {
        last_mean_ = data;
        synchronize(stream_);
        host_->allreduce_mean(data, count);
    }
    void allreduce_mean_after(float* data, int64_t count, void* producer) override {
        if (producer != stream_) wrong_producer_ = true;
        lowest_bucket_ = data;
        ++buckets_;
        synchronize(producer);
        host_->allreduce_mean(data, count);
    }
    void join(void* consumer) override {
        if (consumer != stream_) wrong_producer_ = true;
    }
    void allreduce_sum(double* data, int64_t count) override { host_->allreduce_sum(data, count); }
    void allreduce_sum(int64_t* data, int64_t count) override { host_->allreduce_sum(data, count); }
    void barrier() override { host_->barrier(); }
    [[noreturn]] void abort(int code) override {
        host_->abort(code);
        std::_Exit(code);  // not reached
    }

    void* stream_ = nullptr;
    int streams_set_ = 0;
    const float* last_mean_ = nullptr;
    const float* lowest_bucket_ = nullptr;  // the last bucket starts the buffer
    int64_t buckets_ = 0;
    bool wrong_producer_ = false;  // a bucket or join not on the executor's stream

private:
    // Mode `device` runs on the emulator only; the GPU build runs `nccl`.
    static void synchronize([[maybe_unused]] void* stream) {
#if defined(LADON_EMU)
        if (cudaStreamSynchronize(static_cast<cudaStream_t>(stream)) != cudaSuccess)
            throw ladon::Error("data parallel device check: the producer stream failed");
#endif
    }
    std::shared_ptr<Communicator> host_;
};

uint64_t mix(uint64_t x) {  // splitmix64
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
float uniform(uint64_t key) { return float(mix(key) >> 40) / float(1 << 24); }  // [0, 1)

// Row `row` of the global batch of step `step`, written to the batch's row
// `slot`: an image, a class (head 0) and a binary target (head 1), each label
// missing with probability 0.35.
void fill_row(Batch& batch, int step, int64_t row, int64_t slot) {
    const int64_t pixels = batch.layout().input.per_sample();
    const uint64_t base = (uint64_t(step) << 32) + uint64_t(row) * 1000;
    float* image = batch.input().data() + slot * pixels;
    double left = 0, right = 0;
    for (int64_t i = 0; i < pixels; ++i) {
        image[i] = 2.0f * uniform(base + uint64_t(i)) - 1.0f;
        (i % 6 < 3 ? left : right) += image[i];
    }
    batch.targets(0)[slot] = left > right ? (left > right + 1.0 ? 2.0f : 1.0f) : 0.0f;
    batch.targets(1)[slot] = left + right > 0 ? 1.0f : 0.0f;
    batch.mask(0)[slot] = uniform(base + 900) < 0.35f ? 0.0f : 1.0f;
    batch.mask(1)[slot] = uniform(base + 901) < 0.35f ? 0.0f : 1.0f;
}

ladon::ModelSpec model() {
    ladon::ModelBuilder builder(1, 6, 6);
    builder.trunk().conv2d(4, 3, 1, 1).relu().max_pool2d(2).flatten().dense(8).relu();
    builder.head("class", ladon::Loss::softmax_cross_entropy).dense(3);
    builder.head("sign", ladon::Loss::sigmoid_binary_cross_entropy, 0.5f).dense(1);
    return builder.build();
}

std::unique_ptr<Executor> device_executor(Graph graph, const ExecutorOptions& options, int device) {
#if defined(LADON_EMU)
    return std::make_unique<CudaExecutor>(std::move(graph), options, device);
#else
    return make_executor(std::move(graph), options, {ladon::Backend::cuda, device});
#endif
}

// Largest difference of each named slice relative to its size: in the max
// norm for SGD (elements agree to rounding), in the l2 norm for AdamW, whose
// sqrt(v) division turns a near-total cancellation's last bits into a step
// of up to the learning rate (tests/mpi/data_parallel.sh says more).
double worst_difference(const std::vector<BufferSlice>& slices, std::span<const float> expected,
                        std::span<const float> actual, bool l2, std::string& where) {
    double worst = 0;
    for (const BufferSlice& slice : slices) {
        double difference = 0, size = 0;
        for (int64_t i = slice.offset; i < slice.offset + slice.count; ++i) {
            const double d = double(actual[i]) - double(expected[i]);
            if (l2) {
                difference += d * d;
                size += double(expected[i]) * double(expected[i]);
            } else {
                difference = std::max(difference, std::abs(d));
                size = std::max(size, std::abs(double(expected[i])));
            }
        }
        if (l2) difference = std::sqrt(difference), size = std::sqrt(size);
        const double relative = difference / std::max(size, 1e-3);
        if (relative > worst) worst = relative, where = slice.name;
    }
    return worst;
}

struct Run {
    const char* name;
    OptimizerOptions optimizer;
    std::string mode;
    ExecutorOptions options() const { return {5, optimizer.kind, ladon::TaskWeighting::uncertainty, /*cuda_graphs=*/false, ladon::Precision::fp32};
    }
};

// Rank 0: one process with batch B on the CPU executor (the single-process
// step) against the ranks' result; prints the differences, returns whether
// they are within `tolerance`.
bool matches_one_cpu_process(const Run& run, Executor& ranks_result, int ranks,
                             const std::vector<std::vector<float>>& ranks_losses, double tolerance) {
    CpuExecutor reference(build_graph(model(), global_batch), run.options());
    Batch batch(reference.batch_layout());
    double losses = 0;
    for (int step = 0; step < steps; ++step) {
        for (int64_t row = 0; row < global_batch; ++row) fill_row(batch, step, row, row);
        if (!reference.train_step(batch, run.optimizer, run.optimizer.learning_rate)) {
            std::printf("data parallel device check: the reference's step %d has a loss that is not finite\n", step);
            return false;
        }
        for (std::size_t h = 0; h < ranks_losses[step].size(); ++h) {
            const double a = reference.head_losses()[h], b = ranks_losses[step][h];
            losses = std::max(losses, std::abs(a - b) / std::max(std::abs(a), 1e-6));
        }
    }
    const bool l2 = run.optimizer.kind == OptimizerOptions::Kind::adamw;
    const Graph& graph = reference.graph();
    std::vector<BufferSlice> slices = graph.parameters;
    const int64_t heads = int64_t(graph.heads.size());
    slices.push_back({"task_weights.log_variance", graph.parameter_count, heads, {heads}});
    std::string where_parameters, where_moments;
    const double parameters =
        worst_difference(slices, reference.parameters(), ranks_result.parameters(), l2, where_parameters);
    double moments = 0;
    const int64_t trained = int64_t(reference.parameters().size());
    for (int64_t base = 0; base < int64_t(reference.optimizer_state().size()); base += trained) {
        std::string where;
        const double d =
            worst_difference(slices, reference.optimizer_state().subspan(base, trained),
                             std::span<const float>(ranks_result.optimizer_state()).subspan(base, trained), l2, where);
        if (d >= moments) moments = d, where_moments = where;
    }
    std::printf(
        "data parallel device check (%s, %s, %s): %d ranks x batch %lld vs 1 cpu process x batch %lld, "
        "%d steps, largest relative difference (%s norm per tensor): parameters %.2g (%s), optimizer "
        "state %.2g (%s); losses %.2g\n",
        run.mode.c_str(), run.name, ranks_result.backend_name().c_str(), ranks,
        static_cast<long long>(ranks_result.batch()), static_cast<long long>(global_batch), steps, l2 ? "l2" : "max",
        parameters, where_parameters.c_str(), moments, where_moments.c_str(), losses);
    return parameters <= tolerance && moments <= tolerance && losses <= tolerance;
}

struct Trained {
    std::unique_ptr<Executor> executor;
    std::vector<std::vector<float>> losses;
    int64_t buckets_last_step = 0;
};

// Trains `run` on the ranks (DataParallel::train_step, the trainer's step
// with several ranks), the gradients averaged in buckets of `bucket_bytes`
// (0: one collective).
Trained train(const Run& run, Communicator& host, Communicator& group, int device, int64_t bucket_bytes) {
    const int rank = host.rank();
    Trained trained;
    trained.executor =
        device_executor(build_graph(model(), per_rank_batch(global_batch, group)), run.options(), device);
    Executor& executor = *trained.executor;
    trained.losses.resize(steps);
    DataParallel parallel(group, executor, bucket_bytes);
    parallel.broadcast_state();
    Batch batch(executor.batch_layout(), executor.batch_memory());
    for (int step = 0; step < steps; ++step) {
        const int64_t rows = executor.batch();
        for (int64_t slot = 0; slot < rows; ++slot) fill_row(batch, step, rank * rows + slot, slot);
        if (!parallel.train_step(batch, run.optimizer, run.optimizer.learning_rate, trained.losses[step]))
            throw ladon::Error(fmt::format("step {}: a loss is not finite", step));
    }
    trained.buckets_last_step = parallel.buckets_last_step();
    return trained;
}

// Trains `run` on the ranks and checks the result (and, with buckets, that
// they change no bit); every rank returns the verdict.
bool check(const Run& run, double tolerance, Communicator& host, Communicator& group, int device,
           int64_t bucket_bytes) {
    const int rank = host.rank();
    auto* recorded = dynamic_cast<DeviceBuffersOverHost*>(&group);
    if (recorded != nullptr) recorded->streams_set_ = 0;
    Trained trained = train(run, host, group, device, 0);
    Executor* executor = trained.executor.get();
    const std::vector<std::vector<float>>& losses = trained.losses;
    executor->pull_state();
    bool ok = true;
    auto fail = [&](const std::string& what) {
        std::fprintf(stderr, "data parallel device check (%s, %s): rank %d: %s\n", run.mode.c_str(), run.name, rank,
                     what.c_str());
        ok = false;
    };
    if (recorded != nullptr) {
        // The NCCL-shaped path: the device buffer averaged, on the stream.
        if (recorded->last_mean_ != executor->device_buffer(Executor::FlatBuffer::gradients).data())
            fail("the average did not get the device gradient buffer");
        if (recorded->streams_set_ != 1 || recorded->stream_ != nullptr)
            fail("the executor's stream was not set once for the run and reset after");
    }
    if (bucket_bytes > 0) {
        if (recorded != nullptr) recorded->buckets_ = 0, recorded->streams_set_ = 0;
        Trained bucketed = train(run, host, group, device, bucket_bytes);
        bucketed.executor->pull_state();
        const bool device_buckets = group.device_buffers();  // else staged through the host: one collective
        if (device_buckets ? bucketed.buckets_last_step < 2 : bucketed.buckets_last_step != 1)
            fail(fmt::format("{} collectives per step with buckets of {} bytes, expected {}",
                             bucketed.buckets_last_step, bucket_bytes, device_buckets ? "several" : "one"));
        if (recorded != nullptr) {
            if (recorded->buckets_ != steps * bucketed.buckets_last_step)
                fail(fmt::format("{} buckets started, expected {}", recorded->buckets_,
                                 steps * bucketed.buckets_last_step));
            if (recorded->lowest_bucket_ != bucketed.executor->device_buffer(Executor::FlatBuffer::gradients).data())
                fail("the last bucket does not start at the device gradient buffer");
            if (recorded->wrong_producer_) fail("a bucket was not ordered on the executor's stream");
        }
        auto same_bits = [](std::span<const float> a, std::span<const float> b) {
            return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
        };
        if (!same_bits(executor->parameters(), bucketed.executor->parameters()) ||
            !same_bits(executor->optimizer_state(), bucketed.executor->optimizer_state()))
            fail("parameters or optimizer state in buckets differ from those of one collective");
        for (int step = 0; step < steps; ++step)
            if (bucketed.losses[step] != losses[step]) fail(fmt::format("step {}: other losses in buckets", step));
        if (rank == 0 && ok)
            std::printf("data parallel device check (%s, %s): buckets of %lld bytes, %lld per step: the same bits\n",
                        run.mode.c_str(), run.name, static_cast<long long>(bucket_bytes),
                        static_cast<long long>(bucketed.buckets_last_step));
    }
    if (executor->step() != steps) fail(fmt::format("{} optimizer steps, expected {}", executor->step(), steps));
    // Every rank holds rank 0's bits.
    for (std::span<float> mine : {executor->parameters(), executor->optimizer_state()}) {
        std::vector<float> leader(mine.begin(), mine.end());
        host.broadcast(leader.data(), int64_t(leader.size()));
        if (std::memcmp(leader.data(), mine.data(), mine.size() * sizeof(float)) != 0)
            fail("parameters or optimizer state differ from rank 0's");
    }
    if (rank == 0 && !matches_one_cpu_process(run, *executor, host.size(), losses, tolerance))
        fail(fmt::format("differences above the tolerance {}", tolerance));
    double failed = ok ? 0 : 1;
    host.allreduce_sum(&failed, 1);
    return failed == 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 && argc != 4) {
        std::fprintf(stderr, "usage: %s host|device|nccl TOLERANCE [BUCKET_BYTES]\n", argv[0]);
        return 2;
    }
    const std::string mode = argv[1];
    const double tolerance = std::atof(argv[2]);
    const int64_t bucket_bytes = argc == 4 ? std::atoll(argv[3]) : 0;
#if !defined(LADON_EMU)
    // No usable GPU: a skip, not a failure, so that machines without one pass.
    if (const auto cuda = ladon::cuda_availability(); cuda.devices.empty()) {
        std::printf("data parallel device check: skipped, %s\n", cuda.reason.c_str());
        return 0;
    }
#endif
    try {
        const std::shared_ptr<Communicator> host = ladon::make_communicator();
        std::shared_ptr<Communicator> group;
        int device = 0;
        if (mode == "host") {
            group = host;
        } else if (mode == "device") {
            group = std::make_shared<DeviceBuffersOverHost>(host);
        } else if (mode == "nccl") {
            const auto cuda = ladon::cuda_availability();
            device = host->local_rank() % std::max<int>(1, int(cuda.devices.size()));
            group = ladon::make_device_communicator(host, device);
            if (!group->device_buffers())
                throw ladon::Error("NCCL is not available: " + ladon::nccl_unavailable_reason());
        } else {
            throw ladon::Error(fmt::format("unknown mode {}", mode));
        }
        OptimizerOptions sgd;
        sgd.kind = OptimizerOptions::Kind::sgd;
        sgd.learning_rate = 0.05f;
        sgd.momentum = 0.9f;
        sgd.weight_decay = 1e-3f;
        OptimizerOptions adamw;
        adamw.learning_rate = 3e-3f;
        adamw.weight_decay = 0.01f;
        bool ok = true;
        for (const Run& run : {Run{"sgd", sgd, mode}, Run{"adamw", adamw, mode}})
            ok = check(run, tolerance, *host, *group, device, bucket_bytes) && ok;
        if (host->rank() == 0)
            std::printf("data parallel device check: %s, %d ranks, %s\n", group->backend().c_str(), host->size(),
                        ok ? "ok" : "FAILED");
        return ok ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "data parallel device check: error: %s\n", e.what());
        return 1;
    }
}
