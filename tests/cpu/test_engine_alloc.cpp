// A training step allocates nothing after the first: every buffer is planned
// when the executor and the batch loader are built.
//
// This file replaces the global operator new for the whole test_engine
// executable; it only counts while `counting` is set, so other suites are
// unaffected.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "engine/batch_loader.hpp"
#include "engine/cpu_executor.hpp"
#include "engine/graph.hpp"
#include "engine/metrics.hpp"
#include "engine_test_support.hpp"
#include "ladon/config.hpp"
#include "ladon/training.hpp"

namespace {

std::atomic<bool> counting{false};
std::atomic<int64_t> allocations{0};

void* counted_allocate(std::size_t size) {
    if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(size == 0 ? 1 : size);
}

void* counted_allocate_aligned(std::size_t size, std::align_val_t align) {
    if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
    const std::size_t alignment = static_cast<std::size_t>(align);
    const std::size_t rounded = (std::max<std::size_t>(size, 1) + alignment - 1) / alignment * alignment;
    return std::aligned_alloc(alignment, rounded);
}

// Counts the allocations made while it lives.
class AllocationCounter {
public:
    AllocationCounter() {
        allocations = 0;
        counting = true;
    }
    ~AllocationCounter() { counting = false; }
    AllocationCounter(const AllocationCounter&) = delete;
    AllocationCounter& operator=(const AllocationCounter&) = delete;
    int64_t count() const { return allocations.load(); }
};

}  // namespace

void* operator new(std::size_t size) {
    if (void* p = counted_allocate(size)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
    if (void* p = counted_allocate(size)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return counted_allocate(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return counted_allocate(size); }
void* operator new(std::size_t size, std::align_val_t align) {
    if (void* p = counted_allocate_aligned(size, align)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size, std::align_val_t align) {
    if (void* p = counted_allocate_aligned(size, align)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
    return counted_allocate_aligned(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
    return counted_allocate_aligned(size, align);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

namespace ladon::engine {
namespace {

TEST(EngineAllocation, TheCounterSeesAllocationsOnlyWhileCounting) {
    std::vector<int> before(10);
    AllocationCounter counter;
    std::vector<int> during(10);
    struct alignas(64) CacheLine {
        float values[16];
    };
    auto line = std::make_unique<CacheLine>();  // the aligned operator new
    EXPECT_EQ(counter.count(), 2);
}

// Runs `steps` training steps of `model` on the synthetic dataset and returns
// the operator new calls made by steps 2..steps (load, forward, loss,
// backward, update, metrics, schedule).
int64_t allocations_after_the_first_step(const ModelSpec& model, const TrainerOptions& options, int steps) {
    auto data = make_synthetic_dataset({.seed = 3, .size = 4 * options.batch_size, .canvas = model.height});
    CpuExecutor executor(build_graph(model, options.batch_size),
                      {options.seed, options.optimizer.kind, options.task_weighting});
    BatchLoader loader(*data, executor.batch_layout());
    Batch batch(executor.batch_layout());
    MetricAccumulator metrics(executor.graph());
    std::vector<int64_t> order;
    shuffled_indices(options.seed, 1, order, data->size());
    auto step = [&](int s) {
        const int64_t begin = (s % 4) * options.batch_size;
        loader.load(std::span<const int64_t>(order.data() + begin, options.batch_size), batch);
        executor.forward(batch, true);
        executor.compute_loss(batch);
        metrics.add(executor, batch);
        executor.backward();
        executor.update(options.optimizer,
                        learning_rate_at(options.schedule, options.optimizer.learning_rate, executor.step()));
    };
    step(0);
    AllocationCounter counter;
    for (int s = 1; s < steps; ++s) step(s);
    // An evaluation batch (partial: the loader pads it) allocates nothing either.
    loader.load(std::span<const int64_t>(order.data(), options.batch_size - 1), batch);
    executor.forward(batch, false);
    executor.compute_loss(batch);
    metrics.add(executor, batch);
    return counter.count();
}

TEST(EngineAllocation, DefaultModelStepsAfterTheFirstAllocateNothing) {
    RunConfig config = default_run_config();
    config.training.batch_size = 8;
    EXPECT_EQ(allocations_after_the_first_step(config.model, config.training, 5), 0);
}

TEST(EngineAllocation, DagModelWithBatchNormDropoutSgdAndUncertaintyAllocatesNothing) {
    // The DAG model reads [2, 9, 7] inputs; the synthetic data is square and
    // single-channel, so give the DAG a matching input.
    ModelSpec model = ladon::testing::dag_model();
    model.channels = 1;
    model.height = model.width = 13;  // odd: both branches pool to 6x6
    model.heads[0].name = "shape";
    model.heads[0].layers.back().out_features = 4;
    model.heads[1].name = "box";
    model.heads[2].name = "filled";
    model.heads[2].layers.back().out_features = 1;
    TrainerOptions options;
    options.batch_size = 5;
    options.optimizer.kind = OptimizerOptions::Kind::sgd;
    options.optimizer.nesterov = true;
    options.optimizer.weight_decay = 1e-4f;
    options.schedule.kind = ScheduleOptions::Kind::cosine;
    options.schedule.warmup_steps = 2;
    options.schedule.total_steps = 10;
    options.task_weighting = TaskWeighting::uncertainty;
    EXPECT_EQ(allocations_after_the_first_step(model, options, 6), 0);
}

}  // namespace
}  // namespace ladon::engine
