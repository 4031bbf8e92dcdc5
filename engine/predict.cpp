#include "ladon/predict.hpp"

#include <fmt/format.h>

#include <filesystem>

#include "engine/data/npy.hpp"
#include "ladon/error.hpp"

namespace ladon {

std::vector<std::string> predict_npy(Trainer& trainer, const std::string& inputs, const std::string& output_folder) {
    const auto data = make_npy_dataset({inputs, {}});
    const SampleShape sample = data->sample_shape();
    const ModelSpec& model = trainer.model();
    if (sample.channels != model.channels || sample.height != model.height || sample.width != model.width)
        throw Error(fmt::format("NPY file {}: samples are [{}, {}, {}], but the model's input is [{}, {}, {}]", inputs,
                                sample.channels, sample.height, sample.width, model.channels, model.height,
                                model.width));
    const int64_t count = data->size();
    std::vector<float> images(count * sample.elements());
    for (int64_t i = 0; i < count; ++i) data->load(i, images.data() + i * sample.elements(), {}, nullptr);
    std::vector<std::vector<float>> outputs;
    trainer.predict(images.data(), count, outputs);

    std::error_code error;
    std::filesystem::create_directories(output_folder, error);
    if (error) throw Error(fmt::format("output folder {}: cannot create it: {}", output_folder, error.message()));
    std::vector<std::string> written;
    const auto names = trainer.head_names();
    const auto widths = trainer.head_widths();
    for (std::size_t h = 0; h < names.size(); ++h) {
        const std::string path = (std::filesystem::path(output_folder) / (names[h] + ".npy")).string();
        const std::vector<int64_t> shape{count, widths[h]};
        data::write_npy(path, shape, outputs[h].data());
        written.push_back(path);
    }
    return written;
}

}  // namespace ladon
