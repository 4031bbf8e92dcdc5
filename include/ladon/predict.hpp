#pragma once
// Batch prediction from and to NPY files, so results compare with any other
// framework: inputs [N, C, H, W] (uint8 scaled by 1/255, or float32), one
// `<head>.npy` of float32 [N, width] per head (logits or regressions).
#include <string>
#include <vector>

#include "ladon/training.hpp"

namespace ladon {

// Returns the files written. Throws if the inputs' sample shape is not the
// model's; each output is written atomically.
std::vector<std::string> predict_npy(Trainer& trainer, const std::string& inputs, const std::string& output_folder);

}  // namespace ladon
