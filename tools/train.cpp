// `ladon train`: a run folder with the resolved config, metrics.jsonl and
// checkpoints; progress on the terminal; SIGINT/SIGTERM finish the current
// step, checkpoint and exit 130/143; --resume continues bit for bit.
#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ladon/checkpoint.hpp"
#include "ladon/communicator.hpp"
#include "ladon/config.hpp"
#include "ladon/device.hpp"
#include "ladon/error.hpp"
#include "tools/commands.hpp"
#include "tools/progress.hpp"

namespace ladon::tool {

namespace {

// The one piece of process-wide state: which signal asked us to stop.
std::atomic<int> stop_signal{0};
extern "C" void on_stop_signal(int signal) { stop_signal.store(signal); }

class StopSignals {
public:
    StopSignals() {
        struct sigaction action {};
        action.sa_handler = on_stop_signal;
        sigemptyset(&action.sa_mask);
        sigaction(SIGINT, &action, &previous_int_);
        sigaction(SIGTERM, &action, &previous_term_);
    }
    ~StopSignals() {
        sigaction(SIGINT, &previous_int_, nullptr);
        sigaction(SIGTERM, &previous_term_, nullptr);
    }
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

private:
    struct sigaction previous_int_ {};
    struct sigaction previous_term_ {};
};

// How the ranks average the gradients, for the `data parallel:` line.
std::string bucket_note(const TrainerOptions& training, const Communicator& trainer_group) {
    if (!(training.allreduce_bucket_mb > 0.0)) return "";
    // Staged through the host (a GPU without NCCL) stays one collective.
    if (training.backend == Backend::cuda && !trainer_group.device_buffers())
        return "; allreduce_bucket_mb ignored (staged through the host: one collective)";
    return fmt::format("; gradients averaged in buckets of {} MiB during the backward pass",
                       training.allreduce_bucket_mb);
}

RunConfig resolve_config(const TrainArguments& arguments, std::string& resume_checkpoint) {
    RunConfig config;
    if (!arguments.config.empty()) {
        config = load_run_config(arguments.config, arguments.overrides);
    } else if (!arguments.resume.empty() && arguments.resume != "latest") {
        // Resuming a run folder without a config: the run's own config.
        resume_checkpoint = RunFolder::latest_checkpoint(arguments.resume).string();
        config = read_checkpoint_config(resume_checkpoint);
        config = with_overrides(config, arguments.overrides, resume_checkpoint + " (config)");
    } else {
        config = default_run_config();
        config = with_overrides(config, arguments.overrides, "default config");
    }
    if (arguments.epochs > 0) config.training.epochs = arguments.epochs;
    if (arguments.max_steps > 0) config.training.max_steps = arguments.max_steps;
    if (arguments.threads > 0) config.training.threads = arguments.threads;
    if (!arguments.device.empty()) config.run.device = arguments.device;
    if (!arguments.resume.empty() && resume_checkpoint.empty()) {
        const std::string folder = arguments.resume == "latest" ? config.run.output : arguments.resume;
        resume_checkpoint = RunFolder::latest_checkpoint(folder).string();
    }
    return config;
}

// One JSON line per metric of a task's evaluation.
std::string metrics_json(const char* split, int64_t step, int64_t epoch, const TaskMetric& m) {
    auto line = [&](const std::string& metric, double value) {
        return nlohmann::json{{"step", step},     {"epoch", epoch},   {"split", split},
                              {"task", m.task}, {"metric", metric}, {"value", value}}
            .dump();
    };
    std::string lines = line("loss", m.loss);
    lines += '\n';
    lines += line(m.metric, m.value);
    for (const auto& [name, value] : m.extra) {
        lines += '\n';
        lines += line(name, value);
    }
    return lines;
}

// A new run into a folder that holds an earlier run's metrics or checkpoints
// moves that run aside (folder.1, folder.2, ...) rather than mixing the two
// or deleting anything.
void keep_previous_run(const std::filesystem::path& folder) {
    if (!std::filesystem::exists(folder / "metrics.jsonl") && RunFolder::checkpoints(folder).empty()) return;
    for (int n = 1;; ++n) {
        const std::filesystem::path aside = fmt::format("{}.{}", folder.string(), n);
        if (std::filesystem::exists(aside)) continue;
        std::error_code error;
        std::filesystem::rename(folder, aside, error);
        if (error)
            throw Error(fmt::format("run folder {}: cannot move the previous run aside to {}: {}", folder.string(),
                                    aside.string(), error.message()));
        std::printf("previous run in %s moved to %s\n", folder.c_str(), aside.c_str());
        return;
    }
}

int train_ranks(const TrainArguments& arguments, const std::shared_ptr<Communicator>& group) {
    // Data parallel (mpirun -np N): rank 0 alone prints, logs and writes
    // checkpoints; the others only train, and read the run folder on resume.
    const bool leader = group->leader();
    if (!leader && std::freopen("/dev/null", "w", stdout) == nullptr)
        throw Error(fmt::format("rank {}: cannot silence standard output", group->rank()));
    std::string resume_checkpoint;
    RunConfig config = resolve_config(arguments, resume_checkpoint);
    // Several ranks: one process per GPU, the local rank's (or the CPU).
    if (group->size() == 1)
        select_device(config.run.device, config.training);
    else
        std::puts(choose_rank_device(config.run.device, group->size(), group->local_rank(), config.training).c_str());
    // On GPUs the ranks average device memory with NCCL where this build has
    // it, else through host memory with MPI.
    std::shared_ptr<Communicator> trainer_group = group;
    if (group->size() > 1 && config.training.backend == Backend::cuda) {
        trainer_group = make_device_communicator(group, config.training.cuda_device);
        if (!trainer_group->device_buffers())
            std::printf("data parallel: no NCCL (%s); gradients are averaged by MPI through host memory\n",
                        nccl_unavailable_reason().c_str());
    }
    const auto train_data = make_train_dataset(config.data);
    const auto test_data = make_test_dataset(config.data);
    Trainer trainer(config.model, config.training, trainer_group);
    if (resume_checkpoint.empty() && leader) keep_previous_run(config.run.output);
    group->barrier();  // the others open the folder only after rank 0 moved an earlier run aside
    RunFolder folder(config.run.output);
    if (!resume_checkpoint.empty()) {
        load_checkpoint(trainer, resume_checkpoint);
        std::printf("resumed from %s at step %lld\n", resume_checkpoint.c_str(),
                    static_cast<long long>(trainer.step()));
    }
    if (leader) folder.write_config(config);
    if (group->size() > 1)
        std::printf("data parallel: %d ranks (%s), batch %lld per rank%s%s\n", group->size(),
                    trainer_group->backend().c_str(),
                    static_cast<long long>(config.training.batch_size / group->size()),
                    config.training.backend == Backend::cuda && config.training.cuda_graphs
                        ? "; CUDA graphs off (the ranks meet inside each step)"
                        : "",
                    bucket_note(config.training, *trainer_group).c_str());

    const auto plan = trainer.memory_plan();
    std::printf("ladon: %s, %lld train / %lld test samples, %lld parameters, batch %lld, %s backend, precision %s\n",
                train_data->name().c_str(), static_cast<long long>(train_data->size()),
                static_cast<long long>(test_data ? test_data->size() : 0), static_cast<long long>(trainer.parameter_count()),
                static_cast<long long>(config.training.batch_size), trainer.backend_name().c_str(),
                precision_name(trainer.precision()));
    std::printf("memory: parameters %.2f MiB, gradients %.2f MiB, optimizer %.2f MiB, activations %.2f MiB, "
                "workspace %.2f MiB\nrun folder: %s\n",
                plan.parameters / 1048576.0, plan.gradients / 1048576.0, plan.optimizer_state / 1048576.0,
                plan.activations / 1048576.0, plan.workspace / 1048576.0, folder.path().c_str());
    std::fflush(stdout);

    Progress progress(trainer.head_names(), config.training.batch_size, config.run.log_every);
    std::string last_checkpoint = resume_checkpoint;
    int64_t last_checkpoint_step = resume_checkpoint.empty() ? -1 : trainer.step();
    auto checkpoint = [&]() {
        if (!leader) return;
        last_checkpoint = folder.checkpoint(trainer, config, config.run.keep_checkpoints).string();
        last_checkpoint_step = trainer.step();
    };
    const std::vector<std::string> tasks = trainer.head_names();

    StopSignals signals;
    stop_signal.store(0);
    Trainer::Callbacks callbacks;
    callbacks.on_step = [&](const StepReport& report) {
        progress.step(report);
        if (leader && (report.step % config.run.log_every == 0 || report.step == report.total_steps)) {
            for (std::size_t h = 0; h < tasks.size(); ++h) {
                nlohmann::json record{{"step", report.step},        {"epoch", report.epoch},
                                      {"split", "train"},           {"task", tasks[h]},
                                      {"metric", "loss"},           {"value", report.losses[h]},
                                      {"lr", report.learning_rate}, {"samples_per_second", report.samples_per_second}};
                folder.log(record.dump());
            }
        }
        if (config.run.checkpoint_every > 0 && report.step % config.run.checkpoint_every == 0 &&
            stop_signal.load() == 0)
            checkpoint();
        return stop_signal.load() == 0;
    };
    callbacks.on_epoch = [&](const EpochReport& report) {
        progress.epoch(report, config.training.epochs);
        for (const auto& m : report.test)
            if (leader) folder.log(metrics_json("test", report.steps, report.epoch, m));
        if (config.run.checkpoint_every == 0) checkpoint();
    };
    try {
        trainer.fit(*train_data, test_data.get(), callbacks);
    } catch (const Error& e) {
        progress.finish_line();
        throw Error(fmt::format("{}; last good checkpoint: {}", e.what(),
                                last_checkpoint.empty() ? "none yet" : last_checkpoint));
    }
    progress.finish_line();
    if (const int signal = stop_signal.load(); signal != 0) {
        checkpoint();
        std::fprintf(stderr, "ladon: stopped by %s at step %lld; checkpoint %s (resume with --resume %s)\n",
                     signal == SIGINT ? "SIGINT" : "SIGTERM", static_cast<long long>(trainer.step()),
                     last_checkpoint.c_str(), folder.path().c_str());
        return 128 + signal;
    }
    if (last_checkpoint_step != trainer.step()) checkpoint();
    std::printf("done: step %lld, checkpoint %s\n", static_cast<long long>(trainer.step()), last_checkpoint.c_str());
    return 0;
}

}  // namespace

int train(const TrainArguments& arguments) {
    const std::shared_ptr<Communicator> group = make_communicator();
    try {
        return train_ranks(arguments, group);
    } catch (const std::exception& e) {
        if (group->size() == 1) throw;
        // A failed rank ends the whole job: its peers would otherwise wait in
        // the next collective forever.
        std::fprintf(stderr, "ladon: error on rank %d of %d: %s\n", group->rank(), group->size(), e.what());
        group->abort(1);
    }
    return 1;  // not reached: abort() ends the process
}

}  // namespace ladon::tool
