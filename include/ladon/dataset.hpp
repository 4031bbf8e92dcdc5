#pragma once
// Datasets: each sample is one image (float, C x H x W, NCHW order) plus one
// target and a present/missing flag per task. Datasets are random-access and
// their `load` is safe to call from several threads at once.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ladon {

enum class TaskKind {
    classes,     // one class index per sample (stored as one float), `width` classes
    binary,      // `width` independent 0/1 labels per sample (multi-label)
    regression,  // `width` float targets per sample (e.g. a box x0, y0, x1, y1)
};

struct TaskInfo {
    std::string name;
    TaskKind kind = TaskKind::classes;
    int64_t width = 1;  // classes: number of classes; binary/regression: values per sample

    // Floats one sample's target takes in a batch buffer.
    int64_t target_floats() const { return kind == TaskKind::classes ? 1 : width; }
};

struct SampleShape {
    int64_t channels = 1;
    int64_t height = 1;
    int64_t width = 1;
    int64_t elements() const { return channels * height * width; }
};

class Dataset {
public:
    virtual ~Dataset() = default;
    virtual std::string name() const = 0;
    virtual int64_t size() const = 0;
    virtual SampleShape sample_shape() const = 0;
    virtual const std::vector<TaskInfo>& tasks() const = 0;
    // Writes sample `index` (0 <= index < size()): `image` gets
    // sample_shape().elements() floats; for each task t, targets[t] gets
    // tasks()[t].target_floats() floats and present[t] 1 (label present) or 0.
    virtual void load(int64_t index, float* image, std::span<float* const> targets, float* present) const = 0;
};

// ---------------------------------------------------------------- IDX files
// The MNIST family's format, gzip-compressed or plain (detected by content).
struct IdxArray {
    std::vector<int64_t> dims;
    std::vector<uint8_t> data;  // unsigned-byte IDX (type 0x08) only
};
// Throws ladon::Error naming the file and what is wrong (missing, truncated,
// bad magic, unsupported type, sizes that disagree).
IdxArray read_idx(const std::string& path);

// ---------------------------------------------------------------- built-in datasets

// Shapes on a canvas, generated from (seed, index): needs no files.
// Tasks: `shape` (classes: 4 shapes), `filled` (binary, 1), `box` (regression,
// 4: x0, y0, x1, y1 of the shape's tight box / canvas size).
struct SyntheticOptions {
    uint64_t seed = 1;
    int64_t size = 4096;
    int64_t canvas = 24;  // height = width
};
std::unique_ptr<Dataset> make_synthetic_dataset(const SyntheticOptions& options);

// Two Fashion-MNIST items on a 40x40 canvas (see README / issue for the
// recipe). Tasks: `left` (classes 10), `right` (classes 10), `left_box`
// (regression 4), `footwear` (binary 1).
struct FashionMtlOptions {
    std::string directory = "/usr/share/datasets/fashion-mnist";
    bool train = true;     // train-* files (60 000 samples) or t10k-* (10 000)
    uint64_t seed = 1;
    int64_t limit = 0;     // use only the first `limit` samples; 0 = all
};
std::unique_ptr<Dataset> make_fashion_mtl_dataset(const FashionMtlOptions& options);

// ---------------------------------------------------------------- NPY datasets
// Arrays saved with numpy's np.save, memory-mapped (a dataset may be larger
// than memory). Every file has one row per sample: N rows in all.
struct NpyTaskOptions {
    std::string name;
    TaskKind kind = TaskKind::classes;
    // classes: [N] (or [N, 1]) class indices, uint8, int32 or int64, each in
    //   0..num_classes-1;
    // binary: [N] or [N, W] of 0/1, any supported dtype;
    // regression: [N] or [N, W] of finite float32 or float64.
    std::string path;
    // Optional: [N] of 0/1 (any supported dtype); 0 marks a sample whose label
    // is missing (its value in `path` is then ignored and never checked).
    std::string mask_path;
    int64_t num_classes = 0;  // classes: required (>= 2); other kinds: leave 0
};
struct NpyDatasetOptions {
    // [N, C, H, W] (or [N, H, W], one channel): uint8, scaled by 1/255 to
    // 0..1, or float32, used as is.
    std::string inputs;
    std::vector<NpyTaskOptions> tasks;  // may be empty (inputs only, e.g. for predict)
};
// Checks shapes, dtypes and row counts at once, and the labels' values too
// when the label and mask files are small (under 64 MiB); larger files are
// checked row by row as samples are loaded. Errors name the file, the row and
// the value, e.g. "NPY file labels.npy: row 17 has class 12, expected 0..9".
std::unique_ptr<Dataset> make_npy_dataset(const NpyDatasetOptions& options);

}  // namespace ladon
