#!/usr/bin/env bash
# Data parallelism end to end, on the CPU backend:
#   1. `mpirun -np 2` with per-rank batch B/2 ends at the parameters of one
#      process with batch B (and the same optimizer state and learned task
#      weights), within 1e-5 relative, on data with missing labels;
#   2. a checkpoint from 2 ranks resumes on 1 rank and lands on the same point;
#   3. rank 0 alone writes metrics.jsonl and checkpoints (as many as one
#      process writes);
#   4. a batch the ranks cannot split is one clear error, and the job ends
#      (the failing ranks call MPI_Abort) instead of hanging;
#   5. a rank killed with SIGKILL mid-run ends the job with an error naming
#      it, within the timeout, instead of leaving the other rank waiting.
#
# Why not bit for bit: each rank's gradient is a sum over its B/2 rows and the
# average then adds the two halves, where one process sums all B rows in one
# GEMM reduction, in its own blocking order; float addition is not
# associative, so the gradients differ in their last bits. The head weighting
# N·P_r/P also rounds differently from one process's 1/P.
#
# With SGD (momentum) the parameters and momentum buffers then agree to about
# 1e-6 of each tensor's largest value: checked element-wise (max norm). AdamW
# divides by sqrt(v) + eps, so a gradient that is a near-total cancellation
# (true value about 0, computed as a few ulps of its terms) gets a step of up to
# the learning rate whose size depends on those last bits: 2 of 9216 weights
# of the dense layer differ by 2e-5 of the layer's largest weight after 8
# steps, every other element by < 1e-7. For AdamW the check is per tensor in
# the l2 norm (seen: 5e-7).
#
# usage: data_parallel.sh LADON MPIRUN SOURCE_DIR WORK_DIR
set -euo pipefail
ladon="$1" mpirun="$2" here="$3" work="$4"
rm -rf "$work" && mkdir -p "$work"

# The data: NPY files with masks, so that about a third of each task's labels
# are missing and the two ranks see different present counts per head. The
# loss is a mean over present samples, which is where naive averaging of the
# ranks' gradients goes wrong (the test fails without the N·P_r/P weighting).
/usr/bin/python3 "$here/masked_data.py" "$work" 7 --bright-mask
config="$work/data_parallel.toml"
# No batch norm and no dropout: those differ per rank by design (batch norm
# unless training.sync_batch_norm: sync_batch_norm.sh). Learned task
# weights: their log-variances' gradients go through the average too.
cat > "$config" <<TOML
[model]
input = [1, 12, 12]
trunk = [
  { op = "conv2d", out_channels = 8, kernel = 3, padding = 1 },
  { op = "relu" },
  { op = "max_pool2d", kernel = 2 },
  { op = "flatten" },
  { op = "dense", out_features = 32 },
  { op = "relu", name = "features" },
]
[[model.heads]]
name = "shape"
loss = "softmax_cross_entropy"
layers = [{ op = "dense", out_features = 4 }]
[[model.heads]]
name = "bright"
loss = "sigmoid_binary_cross_entropy"
layers = [{ op = "dense", out_features = 1 }]
[training]
batch_size = 32
max_steps = 8
epochs = 1
seed = 3
task_weighting = "uncertainty"
[optimizer]
kind = "adamw"
learning_rate = 3e-3
weight_decay = 0.01
[data]
dataset = "npy"
inputs = "$work/x.npy"
[[data.tasks]]
name = "shape"
kind = "classes"
classes = 4
labels = "$work/shape.npy"
mask = "$work/shape_mask.npy"
[[data.tasks]]
name = "bright"
kind = "binary"
labels = "$work/bright.npy"
mask = "$work/bright_mask.npy"
[run]
log_every = 1
checkpoint_every = 0
TOML
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Shared memory and loopback only, no process binding (two ranks on two
# cores, each with one OpenMP thread), root allowed (CI runs as root).
mpi=("$mpirun" --allow-run-as-root --oversubscribe --bind-to none --mca btl self,vader)

latest() { ls "$1"/checkpoints/*.safetensors | sort | tail -n 1; }
compare() { /usr/bin/python3 "$here/compare_checkpoints.py" "$@"; }
one() { "$ladon" train --config "$config" --threads 1 "$@" | tail -n 1; }
two() { timeout 240 "${mpi[@]}" -np 2 "$ladon" train --config "$config" --threads 1 "$@" | tail -n 1; }

echo "== SGD: one process with batch 32, two ranks with batch 16 each"
one --set optimizer.kind=sgd --set run.output="$work/sgd-one"
two --set optimizer.kind=sgd --set run.output="$work/sgd-two"
compare "$(latest "$work/sgd-one")" "$(latest "$work/sgd-two")" 1e-5 max

echo "== AdamW: one process with batch 32, two ranks with batch 16 each"
one --set run.output="$work/one"
two --set run.output="$work/two"
compare "$(latest "$work/one")" "$(latest "$work/two")" 1e-5 l2

echo "== two ranks, gradients averaged in buckets during backward: the bits of one collective (SGD, AdamW)"
# 1 KiB buckets: several per step. A sum of two values does not depend on
# how the buffer is cut, and the mean scales each element alike.
two --set optimizer.kind=sgd --set training.allreduce_bucket_mb=0.001 --set run.output="$work/sgd-two-buckets"
compare "$(latest "$work/sgd-two")" "$(latest "$work/sgd-two-buckets")" 0 bits
two --set training.allreduce_bucket_mb=0.001 --set run.output="$work/two-buckets"
compare "$(latest "$work/two")" "$(latest "$work/two-buckets")" 0 bits

echo "== two ranks to step 4, then one process resumes to step 8"
two --max-steps 4 --set run.output="$work/resumed"
one --set run.output="$work/resumed" --resume "$work/resumed"
compare "$(latest "$work/one")" "$(latest "$work/resumed")" 1e-5 l2

echo "== rank 0 alone writes metrics"
one_lines=$(wc -l < "$work/one/metrics.jsonl")
two_lines=$(wc -l < "$work/two/metrics.jsonl")
echo "metrics.jsonl lines: one process $one_lines, two ranks $two_lines"
[ "$one_lines" -eq "$two_lines" ]
[ "$(ls "$work/two/checkpoints" | wc -l)" -eq "$(ls "$work/one/checkpoints" | wc -l)" ]

echo "== batch 32 over 3 ranks: one clear error, no hang"
set +e
output=$(timeout 120 "${mpi[@]}" -np 3 "$ladon" train --config "$config" --threads 1 \
  --set run.output="$work/three" 2>&1)
status=$?
set -e
echo "$output" | grep "ladon: error" | head -n 1
if [ "$status" -eq 0 ] || [ "$status" -eq 124 ]; then
  echo "expected a failed job, got exit status $status"
  exit 1
fi
echo "$output" | grep -q "must be a positive multiple of the 3 ranks"

echo "== a rank killed mid-run (kill -9): the job ends with an error naming it, no hang"
# Enough steps to be mid-run when the kill comes; mpirun notices the lost
# process and ends the other rank (which would otherwise wait forever in its
# next collective).
set +e
timeout 120 "${mpi[@]}" -np 2 "$ladon" train --config "$config" --threads 1 --epochs 100000 --set training.max_steps=0 \
  --set run.output="$work/killed" >"$work/killed.log" 2>&1 &
job=$!
victim=""
for _ in $(seq 1 100); do
  # The two ladon processes of this job (their command line names the run folder).
  victim=$(pgrep -f "ladon.* train .*run.output=$work/killed" | sort -n | tail -n 1)
  [ -n "$victim" ] && [ "$(pgrep -fc "ladon.* train .*run.output=$work/killed")" -ge 2 ] && \
    grep -q "step" "$work/killed.log" && break
  sleep 0.2
done
sleep 1
kill -9 "$victim"
wait "$job"
status=$?
set -e
tail -n 3 "$work/killed.log"
if [ "$status" -eq 0 ] || [ "$status" -eq 124 ]; then
  echo "expected the job to fail after rank process $victim was killed, got exit status $status"
  exit 1
fi
grep -Eq "exited on signal 9|Killed|killed" "$work/killed.log"

echo "data parallel: all checks passed"
