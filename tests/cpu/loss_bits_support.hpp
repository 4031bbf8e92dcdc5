#pragma once
// The loss sequence of a fixed run, and its hash: the guard that refactoring
// the engine (op registry, Batch value, memory plan) changes no result bit.
// The hashes in test_engine_loss_bits.cpp and tests/backend/ were recorded on
// main at 412ee04, before that work started.
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "engine/batch_loader.hpp"
#include "engine/executor.hpp"
#include "ladon/config.hpp"
#include "ladon/dataset.hpp"

namespace ladon::testing {

// Every head's loss at every step of `steps` steps of `config`'s optimizer
// at its learning rate (no schedule), the batches shuffled per epoch from
// seed 7 as the executor tests do.
inline std::vector<float> loss_sequence(engine::Executor& executor, const Dataset& data, const RunConfig& config,
                                        int steps) {
    engine::BatchLoader loader(data, executor.batch_layout());
    engine::Batch batch_data(executor.batch_layout(), executor.batch_memory());
    std::vector<int64_t> order;
    std::vector<float> losses;
    const int64_t batch = executor.batch(), per_epoch = data.size() / batch;
    const OptimizerOptions& optimizer = config.training.optimizer;
    for (int step = 0; step < steps; ++step) {
        if (step % per_epoch == 0) engine::shuffled_indices(7, step / per_epoch + 1, order, data.size());
        loader.load(std::span<const int64_t>(order.data() + (step % per_epoch) * batch, batch), batch_data, step);
        if (!executor.train_step(batch_data, optimizer, optimizer.learning_rate)) break;
        losses.insert(losses.end(), executor.head_losses().begin(), executor.head_losses().end());
    }
    return losses;
}

// FNV-1a over the losses' bits.
inline uint64_t bits_hash(const std::vector<float>& values) {
    uint64_t hash = 14695981039346656037ull;
    for (float value : values) {
        uint32_t bits = 0;
        std::memcpy(&bits, &value, sizeof bits);
        for (int byte = 0; byte < 4; ++byte) hash = (hash ^ ((bits >> (8 * byte)) & 0xffu)) * 1099511628211ull;
    }
    return hash;
}

}  // namespace ladon::testing
