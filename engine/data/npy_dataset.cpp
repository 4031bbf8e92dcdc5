// A dataset of NPY files: one inputs array and, per task, a labels array and
// an optional mask, all memory-mapped and all with one row per sample.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/data/npy.hpp"
#include "ladon/dataset.hpp"
#include "ladon/error.hpp"

namespace ladon {
namespace {

using data::npy_descr;
using data::npy_shape_text;
using data::NpyArray;
using data::NpyDtype;

// Label and mask files up to this size are checked whole when the dataset is
// made, so a bad value fails at once rather than mid-epoch; larger ones are
// checked row by row as samples load (every load checks its rows anyway).
constexpr uint64_t kEagerCheckBytes = uint64_t{64} << 20;
constexpr float kByteScale = 1.0f / 255.0f;

std::string kind_name(TaskKind kind) {
    switch (kind) {
        case TaskKind::classes:
            return "classes";
        case TaskKind::binary:
            return "binary";
        case TaskKind::regression:
            return "regression";
    }
    return "unknown";
}

[[noreturn]] void fail_file(const NpyArray& array, std::string_view what) {
    throw Error(fmt::format("NPY file {}: {}", array.path(), what));
}

// Value `index` as written in an error: integers as integers, floats in
// their shortest form ("0.5", "nan").
std::string value_text(const NpyArray& array, int64_t index) {
    return npy_is_integer(array.dtype()) ? fmt::format("{}", array.as_int64(index))
                                         : fmt::format("{}", array.as_double(index));
}

void require_dtype(const NpyArray& array, std::string_view role, std::initializer_list<NpyDtype> allowed) {
    if (std::find(allowed.begin(), allowed.end(), array.dtype()) != allowed.end()) return;
    std::vector<std::string> names;
    for (const NpyDtype dtype : allowed) names.push_back(fmt::format("'{}'", npy_descr(dtype)));
    fail_file(array, fmt::format("dtype '{}' is not supported for {}; expected {}", npy_descr(array.dtype()), role,
                                 fmt::join(names, ", ")));
}

// One task's labels and optional mask.
class TaskLabels {
public:
    TaskLabels(const NpyTaskOptions& options, const NpyArray& inputs)
        : info_{options.name, options.kind, 1}, labels_(options.path) {
        const auto where = fmt::format("labels of {} task '{}'", kind_name(options.kind), options.name);
        switch (options.kind) {
            case TaskKind::classes:
                require_dtype(labels_, where, {NpyDtype::u8, NpyDtype::i32, NpyDtype::i64});
                break;
            case TaskKind::binary:
                break;  // any dtype holds 0 and 1
            case TaskKind::regression:
                require_dtype(labels_, where, {NpyDtype::f32, NpyDtype::f64});
                break;
        }
        const auto& shape = labels_.shape();
        const bool one_column = shape.size() == 1 || (shape.size() == 2 && shape[1] == 1);
        const bool columns = shape.size() == 2 && shape[1] >= 1;
        if (options.kind == TaskKind::classes ? !one_column : !(one_column || columns)) {
            fail_file(labels_, fmt::format("shape {} does not fit the {}; expected {}", npy_shape_text(shape), where,
                                           options.kind == TaskKind::classes ? "(N,) or (N, 1)" : "(N,) or (N, W)"));
        }
        width_ = shape.size() == 2 ? shape[1] : 1;
        info_.width = options.kind == TaskKind::classes ? options.num_classes : width_;
        check_rows(labels_, fmt::format("task '{}' labels", options.name), inputs);

        if (!options.mask_path.empty()) {
            mask_.emplace(options.mask_path);
            if (mask_->shape().size() != 1) {
                fail_file(*mask_, fmt::format("shape {} does not fit the mask of task '{}'; expected (N,)",
                                              npy_shape_text(mask_->shape()), options.name));
            }
            check_rows(*mask_, fmt::format("task '{}' mask", options.name), inputs);
        }

        const uint64_t bytes = labels_.data().size() + (mask_ ? mask_->data().size() : 0);
        if (bytes <= kEagerCheckBytes) {
            for (int64_t row = 0; row < labels_.shape()[0]; ++row) {
                if (present(row)) check_row(row);
            }
        }
    }

    const TaskInfo& info() const { return info_; }

    // Whether sample `row` has a label; checks the mask value.
    bool present(int64_t row) const {
        if (!mask_) return true;
        const double value = mask_->as_double(row);
        if (value != 0.0 && value != 1.0) {
            fail_file(*mask_, fmt::format("row {} has mask value {}, expected 0 or 1 (task '{}')", row,
                                          value_text(*mask_, row), info_.name));
        }
        return value == 1.0;
    }

    // Checks the label values of sample `row`.
    void check_row(int64_t row) const {
        if (info_.kind == TaskKind::classes) {
            const int64_t label = labels_.as_int64(row);
            if (label < 0 || label >= info_.width) {
                fail_file(labels_, fmt::format("row {} has class {}, expected 0..{} (task '{}' has {} classes)", row,
                                               label, info_.width - 1, info_.name, info_.width));
            }
            return;
        }
        for (int64_t column = 0; column < width_; ++column) {
            const int64_t index = row * width_ + column;
            const double value = labels_.as_double(index);
            const bool valid = info_.kind == TaskKind::binary ? (value == 0.0 || value == 1.0) : std::isfinite(value);
            if (valid) continue;
            const auto cell = labels_.shape().size() == 2 ? fmt::format("row {}, column {}", row, column)
                                                          : fmt::format("row {}", row);
            fail_file(labels_, info_.kind == TaskKind::binary
                                   ? fmt::format("{} has {}, expected 0 or 1 (binary task '{}')", cell,
                                                 value_text(labels_, index), info_.name)
                                   : fmt::format("{} is {}, expected a finite value (regression task '{}'; mark "
                                                 "missing targets with a mask file)",
                                                 cell, value_text(labels_, index), info_.name));
        }
    }

    // Writes sample `row`'s target (zeros when its label is missing) and
    // returns its present flag.
    float load(int64_t row, float* target) const {
        if (!present(row)) {
            std::fill(target, target + info_.target_floats(), 0.0f);
            return 0.0f;
        }
        check_row(row);
        if (info_.kind == TaskKind::classes) {
            target[0] = static_cast<float>(labels_.as_int64(row));
        } else {
            labels_.copy_to_float(row * width_, width_, target);
        }
        return 1.0f;
    }

private:
    static void check_rows(const NpyArray& array, std::string_view role, const NpyArray& inputs) {
        if (array.shape()[0] != inputs.shape()[0]) {
            throw Error(fmt::format("NPY dataset: {} {} has {} rows but inputs {} has {}; expected one row per input",
                                    role, array.path(), array.shape()[0], inputs.path(), inputs.shape()[0]));
        }
    }

    TaskInfo info_;
    NpyArray labels_;
    std::optional<NpyArray> mask_;
    int64_t width_ = 1;  // values per row in the labels file
};

class NpyDataset final : public Dataset {
public:
    explicit NpyDataset(const NpyDatasetOptions& options) : inputs_(options.inputs) {
        require_dtype(inputs_, "inputs", {NpyDtype::u8, NpyDtype::f32});
        const auto& shape = inputs_.shape();
        const bool has_channels = shape.size() == 4;
        if ((shape.size() != 3 && !has_channels) ||
            std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d == 0; })) {
            fail_file(inputs_, fmt::format("inputs have shape {}; expected (N, C, H, W) or (N, H, W) with every "
                                           "dimension at least 1",
                                           npy_shape_text(shape)));
        }
        sample_ = {has_channels ? shape[1] : 1, shape[shape.size() - 2], shape[shape.size() - 1]};
        scale_ = inputs_.dtype() == NpyDtype::u8 ? kByteScale : 1.0f;

        std::set<std::string> names;
        for (const auto& task : options.tasks) {
            const auto where = fmt::format("NPY dataset: task '{}'", task.name);
            if (task.name.empty()) throw Error("NPY dataset: a task has no name; expected a name for each task");
            if (!names.insert(task.name).second)
                throw Error(fmt::format("{} given twice; expected unique names", where));
            if (task.path.empty()) throw Error(fmt::format("{} has no labels file; expected a path", where));
            if (task.kind == TaskKind::classes && task.num_classes < 2) {
                throw Error(fmt::format("{} has num_classes {}; expected at least 2", where, task.num_classes));
            }
            if (task.kind != TaskKind::classes && task.num_classes != 0) {
                throw Error(fmt::format("{} is {} but has num_classes {}; expected num_classes only on classes tasks",
                                        where, kind_name(task.kind), task.num_classes));
            }
            labels_.emplace_back(task, inputs_);
            tasks_.push_back(labels_.back().info());
        }
    }

    std::string name() const override { return fmt::format("npy:{}", inputs_.path()); }
    int64_t size() const override { return inputs_.shape()[0]; }
    SampleShape sample_shape() const override { return sample_; }
    const std::vector<TaskInfo>& tasks() const override { return tasks_; }

    void load(int64_t index, float* image, std::span<float* const> targets, float* present) const override {
        if (index < 0 || index >= size()) {
            throw Error(
                fmt::format("{}: sample index {} out of range; expected 0 <= index < {}", name(), index, size()));
        }
        const int64_t elements = sample_.elements();
        inputs_.copy_to_float(index * elements, elements, image, scale_);
        for (size_t t = 0; t < labels_.size(); ++t) present[t] = labels_[t].load(index, targets[t]);
    }

private:
    NpyArray inputs_;
    SampleShape sample_;
    float scale_ = 1.0f;
    std::vector<TaskLabels> labels_;
    std::vector<TaskInfo> tasks_;
};

}  // namespace

std::unique_ptr<Dataset> make_npy_dataset(const NpyDatasetOptions& options) {
    return std::make_unique<NpyDataset>(options);
}

}  // namespace ladon
