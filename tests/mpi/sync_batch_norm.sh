#!/usr/bin/env bash
# Synchronised batch norm (training.sync_batch_norm) end to end, on the CPU
# backend, with batch norm after convolutions and after a dense layer:
#   1. `mpirun -np 2` with per-rank batch B/2 and the option on ends at the
#      parameters, running statistics and optimizer state of one process with
#      batch B, within the tolerances data_parallel.sh uses (SGD: 1e-5 of each
#      tensor's largest value; AdamW: 1e-5 in the l2 norm), on data with
#      missing labels;
#   2. without the option the two ranks normalise with their own half-batch
#      statistics and end clearly elsewhere: more than 1e-3 away (100 times
#      the tolerance), so check 1 could fail;
#   3. with one process the option changes nothing, to the bit.
# Why not bit for bit in 1: the per-channel sums are added in another order
# (each rank's half, then the two halves), on top of data_parallel.sh's
# reasons.
#
# usage: sync_batch_norm.sh LADON MPIRUN SOURCE_DIR WORK_DIR
set -euo pipefail
ladon="$1" mpirun="$2" here="$3" work="$4"
rm -rf "$work" && mkdir -p "$work"

/usr/bin/python3 "$here/masked_data.py" "$work" 11
config="$work/sync_batch_norm.toml"
# No bias before a batch norm: its exact gradient is 0, and AdamW would turn
# the rounding noise in its place into full-size steps. No dropout (drawn per
# rank by design).
cat > "$config" <<TOML
[model]
input = [1, 12, 12]
trunk = [
  { op = "conv2d", out_channels = 8, kernel = 3, padding = 1, bias = false },
  { op = "batch_norm" },
  { op = "relu" },
  { op = "max_pool2d", kernel = 2 },
  { op = "conv2d", out_channels = 8, kernel = 3, padding = 1, bias = false },
  { op = "batch_norm" },
  { op = "relu" },
  { op = "flatten" },
  { op = "dense", out_features = 32, bias = false },
  { op = "batch_norm" },
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
seed = 5
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
[run]
log_every = 1
checkpoint_every = 0
TOML
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=("$mpirun" --allow-run-as-root --oversubscribe --bind-to none --mca btl self,vader)

latest() { ls "$1"/checkpoints/*.safetensors | sort | tail -n 1; }
compare() { /usr/bin/python3 "$here/compare_checkpoints.py" "$@"; }
one() { "$ladon" train --config "$config" --threads 1 "$@" | tail -n 1; }
two() { timeout 240 "${mpi[@]}" -np 2 "$ladon" train --config "$config" --threads 1 "$@" | tail -n 1; }
sync=(--set training.sync_batch_norm=true)

echo "== SGD: one process with batch 32, two synchronised ranks with batch 16 each"
one --set optimizer.kind=sgd --set run.output="$work/sgd-one"
two --set optimizer.kind=sgd "${sync[@]}" --set run.output="$work/sgd-two-sync"
compare "$(latest "$work/sgd-one")" "$(latest "$work/sgd-two-sync")" 1e-5 max

echo "== AdamW: one process with batch 32, two synchronised ranks with batch 16 each"
one --set run.output="$work/one"
two "${sync[@]}" --set run.output="$work/two-sync"
compare "$(latest "$work/one")" "$(latest "$work/two-sync")" 1e-5 l2

echo "== AdamW, two synchronised ranks, gradients averaged in buckets during backward: the same bits"
# The batch-norm collectives in backward() run while buckets are in flight.
two "${sync[@]}" --set training.allreduce_bucket_mb=0.0001 --set run.output="$work/two-sync-buckets"
compare "$(latest "$work/two-sync")" "$(latest "$work/two-sync-buckets")" 0 bits

echo "== without sync_batch_norm two ranks end more than 1e-3 away (SGD, then AdamW)"
two --set optimizer.kind=sgd --set run.output="$work/sgd-two"
two --set run.output="$work/two"
if compare "$(latest "$work/sgd-one")" "$(latest "$work/sgd-two")" 1e-3 max; then
  echo "expected per-rank batch statistics to differ from one process by more than 1e-3"
  exit 1
fi
if compare "$(latest "$work/one")" "$(latest "$work/two")" 1e-3 l2; then
  echo "expected per-rank batch statistics to differ from one process by more than 1e-3"
  exit 1
fi

echo "== one process: the option changes nothing"
one "${sync[@]}" --set run.output="$work/one-sync"
compare "$(latest "$work/one")" "$(latest "$work/one-sync")" 0 max

echo "sync batch norm: all checks passed"
