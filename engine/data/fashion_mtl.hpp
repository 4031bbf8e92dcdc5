#pragma once
// The fashion-mtl recipe's per-sample draws, exposed so that tests can check a
// sample against the IDX images it was built from.
#include <cstdint>

namespace ladon::data {

inline constexpr int64_t kFashionImageSide = 28;
inline constexpr int64_t kFashionMtlCanvas = 40;
inline constexpr int64_t kFashionMtlMaxJitter = 4;    // offsets are uniform in 0..4
inline constexpr int64_t kFashionMtlRightOrigin = 8;  // the right item's offsets start here

// Which two source images sample `index` combines and where their top-left
// corners land on the canvas. `left_image != right_image`.
struct FashionMtlPlacement {
    int64_t left_image = 0;
    int64_t right_image = 0;
    int64_t left_row = 0;  // left item: rows and columns in 0..4
    int64_t left_col = 0;
    int64_t right_row = 0;  // right item: rows and columns in 8..12
    int64_t right_col = 0;
};

// A pure function of its arguments; needs num_images >= 2.
FashionMtlPlacement fashion_mtl_placement(uint64_t seed, int64_t index, int64_t num_images);

}  // namespace ladon::data
