// `ladon predict`: one <head>.npy of outputs per head.
#include <cstdio>

#include "ladon/checkpoint.hpp"
#include "ladon/predict.hpp"
#include "tools/commands.hpp"

namespace ladon::tool {

int predict(const PredictArguments& arguments) {
    const RunConfig config = read_checkpoint_config(arguments.checkpoint);
    Trainer trainer(config.model, config.training);
    load_checkpoint(trainer, arguments.checkpoint, /*weights_only=*/true);
    for (const auto& path : predict_npy(trainer, arguments.input, arguments.output)) std::printf("wrote %s\n", path.c_str());
    return 0;
}

}  // namespace ladon::tool
