#pragma once
// Task weighting (training.task_weighting): how each head's loss enters the
// total. Each method is defined once, in engine/weighting/<method>.cpp, by a
// TaskWeightingMethod: its config name, the learned values it adds to the
// flat parameter buffer, its head weights before the loss and its term of the
// total loss after it; the file's CUDA half (cuda_weighting.hpp, compiled with
// the CUDA executor) computes the same on the device, so a step never waits
// for them. Both executors and data parallelism reach a method only through
// this table. Adding one touches its file, its line in weighting_list.hpp
// with its TaskWeighting value (include/ladon/training.hpp), and its test.
#include <cstdint>
#include <span>
#include <string_view>

#include "ladon/training.hpp"

namespace ladon::engine {

struct TaskWeightingMethod {
    TaskWeighting kind;
    const char* name;  // the config's training.task_weighting
    // Learned values, per head, after the model's parameters in the flat
    // buffer: trained by the optimizer without weight decay, checkpointed as
    // "task_weights.<parameter_name>", starting at initial_value.
    int parameters_per_head = 0;
    const char* parameter_name = nullptr;
    float initial_value = 0.0f;
    // Before the loss, where the method draws per step: the step's base
    // weights from the configured ones, the run's seed and the 0-based step,
    // on the host (so every backend and every data-parallel rank draws the
    // same). Null: the configured weights.
    void (*step_base)(uint64_t seed, int64_t step, std::span<const float> configured, std::span<float> base) = nullptr;
    // Before the loss: each head's weight from its (step's) base weight and
    // the learned values.
    void (*weights)(std::span<const float> base, std::span<const float> learned, std::span<float> weights) = nullptr;
    // After the loss, from the losses it weighted: the method's own term of
    // the total loss, with the learned values' gradients (overwritten). Data
    // parallelism calls it with the global losses, the same on every rank.
    double (*loss_term)(std::span<const float> losses, std::span<const float> weights, std::span<const float> learned,
                        std::span<float> gradients) = nullptr;
};

// The weights and loss term of a method that learns nothing (fixed, rlw):
// each head's weight is its (step's) base weight, and no term is added.
void base_weights_as_they_are(std::span<const float> base, std::span<const float> learned, std::span<float> weights);
double no_loss_term(std::span<const float> losses, std::span<const float> weights, std::span<const float> learned,
                    std::span<float> gradients);

// Every method, in TaskWeighting order.
std::span<const TaskWeightingMethod* const> task_weighting_methods();
const TaskWeightingMethod& task_weighting_method(TaskWeighting kind);
const TaskWeightingMethod* find_task_weighting(std::string_view name);  // nullptr if none has that name

}  // namespace ladon::engine
