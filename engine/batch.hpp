#pragma once
// A batch as a value: the input rows and, per head, the targets and the mask
// (1 where the row has a label for the head's task, 0 where not). The loader
// (engine/batch_loader.hpp) fills one from a Dataset; an executor reads one in
// Executor::forward / compute_loss / train_step, and keeps no batch of its
// own. Its memory is one allocation, pinned where an executor's backend asks
// for it (Executor::batch_memory), so that a device copies it in with one DMA
// per part.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/graph.hpp"

namespace ladon::engine {

// What a batch holds for a graph: its rows, each row's input, and per head
// what the loader must find in a dataset (name, loss, width) and how many
// target floats a row takes (1 for a class index, else the head's width).
struct BatchLayout {
    struct HeadTargets {
        std::string name;
        Loss loss = Loss::mean_squared_error;
        int64_t width = 0;
        int64_t target_floats = 0;  // per row
        bool operator==(const HeadTargets&) const = default;
    };
    int64_t rows = 0;
    TensorShape input;  // one row's [1, C, H, W]
    std::vector<HeadTargets> heads;

    static BatchLayout of(const Graph& graph);
    int64_t input_floats() const { return rows * input.per_sample(); }
    int64_t target_floats() const;          // all heads, all rows
    int64_t target_offset(int head) const;  // floats before the head's targets, heads in order
    bool operator==(const BatchLayout&) const = default;
};

// Host memory for a batch: `floats` floats, owned by the returned pointer.
using HostAllocator = std::function<std::shared_ptr<float>(std::size_t floats)>;
HostAllocator plain_host_memory();

class Batch {
public:
    explicit Batch(BatchLayout layout, const HostAllocator& allocate = plain_host_memory());
    Batch(Batch&&) noexcept = default;
    Batch& operator=(Batch&&) noexcept = default;
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

    const BatchLayout& layout() const { return layout_; }
    int64_t rows() const { return layout_.rows; }
    // Rows the loader filled; the rest (the last batch of an evaluation) are
    // zero with mask 0.
    int64_t loaded_rows() const { return loaded_rows_; }
    void set_loaded_rows(int64_t rows) { loaded_rows_ = rows; }

    std::span<float> input() { return {memory_.get(), std::size_t(layout_.input_floats())}; }
    std::span<const float> input() const { return {memory_.get(), std::size_t(layout_.input_floats())}; }
    float* targets(int head) { return targets_ + target_offsets_[std::size_t(head)]; }
    const float* targets(int head) const { return targets_ + target_offsets_[std::size_t(head)]; }
    float* mask(int head) { return masks_ + int64_t(head) * layout_.rows; }
    const float* mask(int head) const { return masks_ + int64_t(head) * layout_.rows; }
    // Every head's targets, head after head, and every head's mask: what a
    // device copies in, one copy each.
    std::span<const float> all_targets() const { return {targets_, std::size_t(layout_.target_floats())}; }
    std::span<const float> all_masks() const { return {masks_, std::size_t(layout_.rows) * layout_.heads.size()}; }

private:
    BatchLayout layout_;
    std::shared_ptr<float> memory_;
    std::vector<int64_t> target_offsets_;  // per head, floats from targets_
    float* targets_ = nullptr;
    float* masks_ = nullptr;
    int64_t loaded_rows_ = 0;
};

}  // namespace ladon::engine
