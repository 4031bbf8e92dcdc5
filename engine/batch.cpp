#include "engine/batch.hpp"

#include <algorithm>

namespace ladon::engine {

BatchLayout BatchLayout::of(const Graph& graph) {
    BatchLayout layout;
    layout.rows = graph.batch;
    layout.input = graph.tensors[0].shape;
    layout.input.batch = 1;
    for (const Head& head : graph.heads)
        layout.heads.push_back({head.spec.name, head.spec.loss, head.width,
                                head.spec.loss == Loss::softmax_cross_entropy ? 1 : head.width});
    return layout;
}

int64_t BatchLayout::target_floats() const {
    int64_t floats = 0;
    for (const HeadTargets& head : heads) floats += head.target_floats * rows;
    return floats;
}

int64_t BatchLayout::target_offset(int head) const {
    int64_t floats = 0;
    for (int h = 0; h < head; ++h) floats += heads[std::size_t(h)].target_floats * rows;
    return floats;
}

HostAllocator plain_host_memory() {
    // Uninitialised: the Batch fills it.
    return [](std::size_t floats) { return std::shared_ptr<float>(new float[floats], std::default_delete<float[]>()); };
}

Batch::Batch(BatchLayout layout, const HostAllocator& allocate) : layout_(std::move(layout)) {
    for (int h = 0; h < int(layout_.heads.size()); ++h) target_offsets_.push_back(layout_.target_offset(h));
    const int64_t offset = layout_.target_floats();
    const int64_t masks = layout_.rows * int64_t(layout_.heads.size());
    const auto floats = std::size_t(layout_.input_floats() + offset + masks);
    memory_ = allocate(std::max<std::size_t>(floats, 1));
    std::fill(memory_.get(), memory_.get() + floats, 0.0f);
    targets_ = memory_.get() + layout_.input_floats();
    masks_ = targets_ + offset;
    std::fill(masks_, masks_ + masks, 1.0f);  // every row labelled, until a loader says otherwise
}

}  // namespace ladon::engine
