#pragma once
// The trainer's side of data parallelism: what each rank of a Communicator
// does around the executor's step so that N ranks with per-rank batch B/N
// take the same steps, in exact arithmetic, as one rank with batch B.
//
//   shard     rank r trains on rows [r·B/N, (r+1)·B/N) of every global batch,
//             so the global sample order is one process's
//   losses    each head's loss is a mean over that head's PRESENT samples,
//             so a rank's mean is not the global one when labels are
//             missing: the present counts P_r,h are summed first, and rank
//             r's head-h logit gradient is weighted by N·P_r,h / P_h; the
//             averaged gradient is then the global mean's gradient
//   gradients the whole flat gradient buffer (weights, then the learned
//             task weighting's values) averaged where it lives: on the GPU with a
//             device communicator (NCCL), ordered on the executor's stream;
//             through host memory otherwise (the CPU backend's buffer itself,
//             or a CUDA executor's gradients pulled to the host, averaged by
//             MPI and pushed back)
//   buckets   with training.allreduce_bucket_mb > 0 the average runs in
//             buckets of at least that size, each started during backward()
//             as soon as its last writer has run (Executor's gradients-final
//             hook), so that communication overlaps the rest of the backward
//             pass: with NCCL on a communication stream that waits for an
//             event on the executor's stream (the update waits for it in
//             turn); with MPI on the CPU backend's buffer as MPI_Iallreduce,
//             pushed on between nodes (MPI_Testall) and finished before the
//             update. A CUDA executor without NCCL keeps the one staged
//             collective (average_gradients() says why). With 2 ranks the
//             result has the bits of the single collective (a sum of two
//             values does not depend on how the buffer is cut); with more,
//             MPI may add in another order per message size.
//
// Host waits per step on a CUDA executor: the losses, which compute_loss()
// brings to the host for the reduction above (a global loss that is not
// finite must stop the update on every rank, so this is decided before it),
// and the step's end, when the metrics read the outputs. The NCCL average
// adds none (it is enqueued on the executor's stream); staged through the
// host, pull_gradients() adds one.
//
// The trainer runs one process alone through Executor::train_step (one wait
// per step on a GPU, a replayed CUDA graph) and calls none of this. Several
// ranks meet between a step's phases (train_step below), so their steps are
// never captured as CUDA graphs: the losses must reach the host before the
// head weighting, and the average sits between backward and update. Called
// with one rank, every collective is the identity (the weights are exactly
// 1). Batch norm keeps per-rank batch statistics (each rank normalises its
// own B/N rows) unless training.sync_batch_norm sums them over the ranks (the
// Trainer gives the executor the communicator's allreduce; the CPU backend
// only); dropout masks are drawn per rank row; per-rank statistics and
// dropout differ from one process with batch B.
#include <cstdint>
#include <vector>

#include "engine/executor.hpp"
#include "engine/metrics.hpp"
#include "ladon/communicator.hpp"

namespace ladon::engine {

// Per-rank batch of a global batch; throws unless `group.size()` divides it.
int64_t per_rank_batch(int64_t global_batch, const Communicator& group);

class DataParallel {
public:
    // With a device communicator (NCCL), sets the executor's stream as the
    // communicator's until destruction; throws if the executor keeps its
    // buffers on the host.
    // `bucket_bytes` 0: one collective after backward(); above 0: buckets of
    // at least that many bytes during it (see above).
    DataParallel(Communicator& group, Executor& executor, int64_t bucket_bytes = 0);
    ~DataParallel();
    DataParallel(const DataParallel&) = delete;
    DataParallel& operator=(const DataParallel&) = delete;

    int64_t global_batch() const { return executor_.batch() * group_.size(); }
    // This rank's first row within a global batch.
    int64_t first_row() const { return executor_.batch() * group_.rank(); }

    // Parameters, optimizer state and non-trained state (batch-norm running
    // statistics) from rank 0, so every rank starts, or resumes, from the
    // same point.
    void broadcast_state();

    // After compute_loss(batch), before backward(): sums the present counts (from the batch's masks) and the
    // losses over the ranks, weights this rank's head gradients as above and
    // returns each head's global mean loss (the same on every rank, so a
    // non-finite loss stops or skips every rank alike).
    std::vector<float> reduce_losses(const Batch& batch);

    // After backward(): the mean of every rank's flat gradient buffer.
    void average_gradients();

    // Whether the gradients are averaged in buckets during backward(), and
    // how many collectives the last step started (1 without buckets).
    bool bucketed() const { return bucketed_; }
    int64_t buckets_last_step() const { return buckets_last_step_; }

    // One training step of this rank: forward, loss, reduce_losses(),
    // backward, average_gradients(), update. The update is skipped on every
    // rank alike when a global loss is not finite; returns whether it ran,
    // with each head's global loss in `losses`.
    bool train_step(const Batch& batch, const OptimizerOptions& optimizer, float learning_rate,
                    std::vector<float>& losses);

    // Whether every rank wants to go on (false if any asked to stop), so all
    // leave the training loop after the same step.
    bool all_continue(bool continue_here);

    // Sums the ranks' running training metrics into every rank's accumulator.
    void reduce_metrics(MetricAccumulator& metrics);

private:
    // backward() with the gradients-final hook: starts each bucket as it
    // completes, then waits for them all (host) or orders the update after
    // them (device).
    void backward_in_buckets();
    void gradients_final(int64_t begin, int64_t end);
    void start_bucket();

    Communicator& group_;
    Executor& executor_;
    bool on_device_ = false;  // the communicator averages device memory
    bool bucketed_ = false;
    int64_t bucket_floats_ = 0;
    float* gradients_ = nullptr;  // the buffer the buckets average (device or host)
    void* stream_ = nullptr;      // the executor's stream (device), or null
    // The part of the buffer final but not yet started: [bucket_begin_,
    // bucket_end_); the ranges arrive from the top down.
    int64_t bucket_begin_ = 0, bucket_end_ = 0;
    int64_t buckets_started_ = 0, buckets_last_step_ = 1;
    std::vector<double> sums_;  // [present counts per head, present-weighted losses per head]
};

}  // namespace ladon::engine
