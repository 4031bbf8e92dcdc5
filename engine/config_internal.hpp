#pragma once
// The config reader's entry for a checkpoint's embedded run config: as
// parse_run_config, but a layer's `stride = [0, 0]`, which checkpoints
// written before configs showed effective values hold for "the default", is
// accepted.
#include <string>
#include <string_view>

#include "ladon/config.hpp"

namespace ladon {

RunConfig parse_checkpoint_config(std::string_view text, const std::string& source);

}  // namespace ladon
