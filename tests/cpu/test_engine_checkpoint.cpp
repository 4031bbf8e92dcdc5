// Checkpoints, config overrides and the config's TOML round trip.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ladon/checkpoint.hpp"
#include "ladon/config.hpp"
#include "ladon/device.hpp"
#include "ladon/error.hpp"

namespace {

std::filesystem::path temp_folder(const std::string& name) {
    auto path = std::filesystem::temp_directory_path() / ("ladon-test-" + name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
    return path;
}

std::string message_of(const std::function<void()>& action) {
    try {
        action();
    } catch (const ladon::Error& e) {
        return e.what();
    }
    return "(no error)";
}

ladon::RunConfig small_config() {
    ladon::RunConfig config = ladon::default_run_config();
    config.training.max_steps = 30;
    config.data.train_size = 512;
    config.data.test_size = 64;
    return config;
}

TEST(EngineConfigText, ToTomlRoundTripsEveryValue) {
    ladon::RunConfig config = ladon::parse_run_config(
        std::string(std::istreambuf_iterator<char>(std::ifstream("examples/fashion_mtl.toml").rdbuf()), {}),
        "examples/fashion_mtl.toml");
    config.training.optimizer.learning_rate = 3e-4f;
    config.training.schedule.kind = ladon::ScheduleOptions::Kind::cosine;
    config.model.heads[0].label_smoothing = 0.1f;
    config.training.prefetch_batches = 5;
    config.training.sync_batch_norm = true;
    config.training.allreduce_bucket_mb = 0.01;
    config.model.trunk[0].name = "stem \"quoted\"";
    config.model.trunk[1].inputs = {"stem \"quoted\""};
    const std::string text = ladon::to_toml(config);
    const ladon::RunConfig again = ladon::parse_run_config(text, "round trip");
    EXPECT_EQ(ladon::to_toml(again), text);
    EXPECT_EQ(again.training.optimizer.learning_rate, 3e-4f);
    EXPECT_EQ(again.model.trunk[0].name, "stem \"quoted\"");
    EXPECT_EQ(again.model.heads.size(), 4u);
    EXPECT_EQ(again.training.prefetch_batches, 5);
    EXPECT_TRUE(again.training.sync_batch_norm);
    EXPECT_EQ(again.training.allreduce_bucket_mb, 0.01);
}

TEST(EngineConfigText, SetOverridesAnyKeyAndIsValidatedLikeTheFile) {
    const std::string text = ladon::to_toml(ladon::default_run_config());
    const auto config = ladon::parse_run_config(
        text, "run.toml",
        {"optimizer.learning_rate=3e-4", "data.dataset=fashion-mtl", "model.heads.1.weight=2.5", "training.seed=7"});
    EXPECT_EQ(config.training.optimizer.learning_rate, 3e-4f);
    EXPECT_EQ(config.data.dataset, "fashion-mtl");
    EXPECT_EQ(config.model.heads[1].weight, 2.5f);
    EXPECT_EQ(config.training.seed, 7u);
    EXPECT_EQ(message_of([&] { ladon::parse_run_config(text, "run.toml", {"optimizer.learning_rat=1"}); }),
              "run.toml (--set): optimizer.learning_rat: unknown key");
    EXPECT_EQ(message_of([&] { ladon::parse_run_config(text, "run.toml", {"training.batch_size=big"}); }),
              "run.toml (--set): training.batch_size: expected an integer, got the string \"big\"");
    EXPECT_EQ(message_of([&] { ladon::parse_run_config(text, "run.toml", {"novalue"}); }),
              "run.toml (--set): 'novalue' is not key=value");
    EXPECT_NE(message_of([&] { ladon::parse_run_config(text, "run.toml", {"model.heads.9.weight=1"}); })
                  .find("'9' is not an index of an array of 3 items"),
              std::string::npos);
}

TEST(EngineConfigText, DevicesParseAndBadOnesAreErrors) {
    EXPECT_EQ(ladon::parse_device("cuda:3").index, 3);
    EXPECT_EQ(ladon::parse_device("cpu").backend, ladon::Backend::cpu);
    EXPECT_EQ(message_of([] { ladon::parse_device("gpu"); }),
              "unknown device \"gpu\"; expected auto, cpu, cuda or cuda:N");
    EXPECT_NE(message_of([] { ladon::parse_run_config("[model]\ninput=[1,2,2]\n[[model.heads]]\nname=\"a\"\n"
                                                      "loss=\"mean_squared_error\"\nlayers=[{op=\"dense\", "
                                                      "out_features=1}]\n[run]\ndevice = \"cuda:x\"\n",
                                                      "r.toml"); })
                  .find("r.toml:8: run.device: unknown device"),
              std::string::npos);
}

TEST(EngineConfigText, SeveralRanksTakeTheirLocalRanksGpuAndRefuseAnExplicitOne) {
    ladon::TrainerOptions options;
    // Every rank would take GPU 1: refused, whatever the machine has.
    const std::string refused = message_of([&] { ladon::choose_rank_device("cuda:1", 2, 0, options); });
    EXPECT_NE(refused.find("device \"cuda:1\" with 2 ranks"), std::string::npos) << refused;
    EXPECT_NE(refused.find("CUDA_VISIBLE_DEVICES"), std::string::npos) << refused;
    // The CPU, asked for or (auto) without a GPU; one rank is a single process.
    EXPECT_NE(ladon::choose_rank_device("cpu", 4, 3, options).find("device: cpu"), std::string::npos);
    EXPECT_EQ(options.backend, ladon::Backend::cpu);
    if (ladon::cuda_availability().devices.empty()) {
        EXPECT_NE(ladon::choose_rank_device("auto", 2, 1, options).find("training on the CPU"), std::string::npos);
        EXPECT_EQ(options.backend, ladon::Backend::cpu);
        EXPECT_EQ(message_of([&] { ladon::choose_rank_device("cuda:1", 1, 0, options); }),
                  message_of([&] { ladon::choose_device("cuda:1", options); }));
    } else {
        const int devices = int(ladon::cuda_availability().devices.size());
        ladon::choose_rank_device("cuda", 2, devices + 1, options);
        EXPECT_EQ(options.backend, ladon::Backend::cuda);
        EXPECT_EQ(options.cuda_device, (devices + 1) % devices);
    }
}

TEST(EngineCheckpoint, SaveAndLoadRestoreWeightsOptimizerStateAndProgressExactly) {
    const auto folder = temp_folder("checkpoint");
    const auto config = small_config();
    const auto train = ladon::make_train_dataset(config.data);
    ladon::Trainer trained(config.model, config.training);
    trained.fit(*train, nullptr);
    const std::string path = (folder / "a.safetensors").string();
    ladon::save_checkpoint(trained, config, path);

    ladon::TrainerOptions other_seed = config.training;
    other_seed.seed = 99;
    ladon::Trainer restored(config.model, other_seed);
    ladon::load_checkpoint(restored, path);
    EXPECT_EQ(restored.step(), 30);
    EXPECT_EQ(restored.optimizer_step(), 30);
    auto a = trained.state_tensors(), b = restored.state_tensors();
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(a[i].name, b[i].name);
        for (int64_t k = 0; k < a[i].count; ++k) ASSERT_EQ(a[i].data[k], b[i].data[k]) << a[i].name << "[" << k << "]";
    }
    EXPECT_EQ(ladon::to_toml(ladon::read_checkpoint_config(path)), ladon::to_toml(config));
    // Names and layouts are PyTorch's.
    EXPECT_EQ(a[0].name, "trunk.0.weight");
    EXPECT_EQ(a[0].shape, (std::vector<int64_t>{16, 1, 3, 3}));
    std::filesystem::remove_all(folder);
}

TEST(EngineCheckpoint, CheckpointOfADifferentModelIsAnErrorAndChangesNothing) {
    const auto folder = temp_folder("mismatch");
    const auto config = small_config();
    ladon::Trainer trainer(config.model, config.training);
    const std::string path = (folder / "a.safetensors").string();
    ladon::save_checkpoint(trainer, config, path);

    ladon::RunConfig wider = config;
    wider.model.trunk[0].out_channels = 8;
    ladon::Trainer other(wider.model, wider.training);
    const float before = other.state_tensors()[0].data[0];
    EXPECT_EQ(message_of([&] { ladon::load_checkpoint(other, path); }),
              "checkpoint " + path +
                  ": tensor 'trunk.0.weight' has shape [16, 1, 3, 3], expected [8, 1, 3, 3]: the checkpoint belongs "
                  "to a different model");
    EXPECT_EQ(other.state_tensors()[0].data[0], before);
    std::filesystem::remove_all(folder);
}

TEST(EngineCheckpoint, TruncatedOrForeignFilesAreErrorsNamingTheFile) {
    const auto folder = temp_folder("corrupt");
    const auto config = small_config();
    ladon::Trainer trainer(config.model, config.training);
    const std::string path = (folder / "a.safetensors").string();
    ladon::save_checkpoint(trainer, config, path);
    const auto size = std::filesystem::file_size(path);
    std::filesystem::resize_file(path, size - 100);
    const std::string truncated = message_of([&] { ladon::load_checkpoint(trainer, path); });
    EXPECT_NE(truncated.find(path), std::string::npos) << truncated;
    EXPECT_EQ(truncated.find("(no error)"), std::string::npos);

    const std::string missing = (folder / "missing.safetensors").string();
    EXPECT_NE(message_of([&] { ladon::load_checkpoint(trainer, missing); }).find(missing), std::string::npos);
    std::filesystem::remove_all(folder);
}

TEST(EngineRunFolder, KeepsTheNewestCheckpointsAndFindsTheLatest) {
    const auto folder = temp_folder("run");
    auto config = small_config();
    config.training.max_steps = 5;
    const auto train = ladon::make_train_dataset(config.data);
    ladon::Trainer trainer(config.model, config.training);
    ladon::RunFolder run(folder / "run");
    ladon::Trainer::Callbacks callbacks;
    callbacks.on_step = [&](const ladon::StepReport&) {
        run.checkpoint(trainer, config, 2);
        return true;
    };
    trainer.fit(*train, nullptr, callbacks);
    const auto kept = ladon::RunFolder::checkpoints(folder / "run");
    ASSERT_EQ(kept.size(), 2u);
    EXPECT_EQ(kept[0].filename(), "step-000000004.safetensors");
    EXPECT_EQ(ladon::RunFolder::latest_checkpoint(folder / "run").filename(), "step-000000005.safetensors");
    EXPECT_NE(message_of([&] { ladon::RunFolder::latest_checkpoint(folder / "nothing"); }).find("no checkpoint"),
              std::string::npos);
    std::filesystem::remove_all(folder);
}

}  // namespace
