// The ladon command: argument parsing and dispatch. Every error the user can
// fix comes out as one line on stderr and a non-zero exit.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "ladon/error.hpp"
#include "tools/commands.hpp"

int main(int argc, char** argv) {
    using namespace ladon::tool;
    CLI::App app{"ladon: multi-task convolutional network training"};
    app.set_version_flag("--version", "ladon 0.1.0");
    app.require_subcommand(1);

    TrainArguments train_args;
    CLI::App* train_cmd = app.add_subcommand("train", "Train a model (default: the embedded synthetic model)");
    train_cmd->add_option("-c,--config", train_args.config, "Run config (TOML); none: the embedded synthetic model");
    train_cmd->add_option("--set", train_args.overrides, "Override a config key: --set optimizer.learning_rate=3e-4");
    train_cmd->add_option("--device", train_args.device, "auto, cpu, cuda or cuda:N (default: the config's run.device)");
    train_cmd->add_option("--resume", train_args.resume,
                          "Continue from the newest checkpoint of a run folder, or 'latest' (the config's run.output)");
    train_cmd->add_option("--epochs", train_args.epochs, "Override training.epochs")->check(CLI::PositiveNumber);
    train_cmd->add_option("--max-steps", train_args.max_steps, "Stop after this many steps")->check(CLI::PositiveNumber);
    train_cmd->add_option("--threads", train_args.threads, "CPU threads (default: all cores)")->check(CLI::PositiveNumber);

    EvalArguments eval_args;
    CLI::App* eval_cmd = app.add_subcommand("eval", "Each task's metrics of a checkpoint on a data split");
    eval_cmd->add_option("--checkpoint", eval_args.checkpoint, "Checkpoint (.safetensors)")->required();
    eval_cmd->add_option("--split", eval_args.split, "test or train")->check(CLI::IsMember({"test", "train"}));
    eval_cmd->add_option("--set", eval_args.overrides, "Override a key of the checkpoint's config (e.g. data.*)");

    PredictArguments predict_args;
    CLI::App* predict_cmd = app.add_subcommand("predict", "Write each head's outputs for inputs in an NPY file");
    predict_cmd->add_option("--checkpoint", predict_args.checkpoint, "Checkpoint (.safetensors)")->required();
    predict_cmd->add_option("--input", predict_args.input, "x.npy: N x C x H x W, uint8 or float32")->required();
    predict_cmd->add_option("--output", predict_args.output, "Folder for one <head>.npy per head")->required();

    TimeArguments time_args;
    CLI::App* time_cmd = app.add_subcommand("time", "Forward and backward time per layer and per step");
    time_cmd->add_option("-c,--config", time_args.config, "Run config (TOML); none: the embedded synthetic model");
    time_cmd->add_option("--set", time_args.overrides, "Override a config key");
    time_cmd->add_option("--device", time_args.device, "auto, cpu, cuda or cuda:N");
    time_cmd->add_option("--iterations", time_args.iterations, "Timed steps")->check(CLI::PositiveNumber);

    CLI::App* info_cmd = app.add_subcommand("info", "Version, build options, backends and devices");

    CLI11_PARSE(app, argc, argv);
    try {
        if (train_cmd->parsed()) return train(train_args);
        if (eval_cmd->parsed()) return eval(eval_args);
        if (predict_cmd->parsed()) return predict(predict_args);
        if (time_cmd->parsed()) return time(time_args);
        if (info_cmd->parsed()) return info();
    } catch (const ladon::Error& e) {
        std::fprintf(stderr, "ladon: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ladon: internal error: %s\n", e.what());
        return 2;
    }
    return 0;
}
