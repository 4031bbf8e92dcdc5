#pragma once
// The config reader's entry for a checkpoint's embedded run config: as
// parse_run_config, but a layer's `stride = [0, 0]`, which checkpoints
// written before configs showed effective values hold for "the default", is
// accepted.
#include <array>
#include <string>
#include <string_view>
#include <utility>

#include "ladon/config.hpp"
#include "ladon/training.hpp"

namespace ladon {

// training.precision's words, read by the config reader and written by
// precision_name (config_writer.cpp).
inline constexpr std::array<std::pair<const char*, Precision>, 4> precision_names{{
    {"auto", Precision::automatic},
    {"fp32", Precision::fp32},
    {"tf32", Precision::tf32},
    {"bf16", Precision::bf16},
}};

RunConfig parse_checkpoint_config(std::string_view text, const std::string& source);

}  // namespace ladon
