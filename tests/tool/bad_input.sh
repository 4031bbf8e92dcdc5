#!/usr/bin/env bash
# Bad input to `ladon`: each case must exit non-zero with ONE line on stderr
# that names what is wrong, and leave no checkpoint behind. Also trains on
# user NPY data end to end. Needs numpy (Debian python3-numpy) to write NPY.
set -euo pipefail
ladon="$1"; source_dir="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
failures=0
# expect NAME 'substring' -- command...
expect() {
  local name="$1" want="$2"; shift 3
  set +e; "$@" > "$work/out" 2> "$work/err"; local rc=$?; set -e
  if [ "$rc" -eq 0 ]; then echo "FAIL $name: exited 0"; failures=$((failures + 1)); return; fi
  if [ "$(wc -l < "$work/err")" -ne 1 ]; then
    echo "FAIL $name: expected one line on stderr, got:"; cat "$work/err"; failures=$((failures + 1)); return
  fi
  if ! grep -qF -- "$want" "$work/err"; then
    echo "FAIL $name: wanted '$want' in: $(cat "$work/err")"; failures=$((failures + 1)); return
  fi
  echo "ok   $name: $(cat "$work/err")"
}

model='[model]
input = [1, 24, 24]
trunk = [{ op = "conv2d", out_channels = 4, kernel = 3 }, { op = "relu" }]
[[model.heads]]
name = "shape"
loss = "softmax_cross_entropy"
layers = [{ op = "dense", out_features = 4 }]'

printf '%s\n[training]\nepochs = [3\n' "$model" > malformed.toml
expect malformed_toml "malformed.toml:9:" -- "$ladon" train --config malformed.toml
printf '%s\n' "${model/relu/relux}" > unknown_op.toml
expect unknown_op 'unknown_op.toml:3: model.trunk[1].op: unknown value "relux"' -- "$ladon" train --config unknown_op.toml
printf '%s\n' "${model/softmax_cross_entropy/softmax}" > unknown_loss.toml
expect unknown_loss 'model.heads[0].loss: unknown value "softmax"' -- "$ladon" train --config unknown_loss.toml
printf '%s\n' "${model/kernel = 3/kernel = 31}" > big_kernel.toml
expect conv_bigger_than_input "has a 31x31 kernel with padding 0x0, which does not fit its input [32, 1, 24, 24]" \
  -- "$ladon" train --config big_kernel.toml --set run.output="$work/run"
printf '%s\n' "${model/out_features = 4/out_features = 5}" > wrong_width.toml
expect head_width_wrong "head 'shape' outputs 5 values per sample, but task 'shape' of dataset 'synthetic' has width 4" \
  -- "$ladon" train --config wrong_width.toml --set run.output="$work/run"
expect missing_idx "fashion-mnist-missing/train-images-idx3-ubyte.gz" \
  -- "$ladon" train --config "$source_dir/examples/fashion_mtl.toml" --set data.directory="$work/fashion-mnist-missing" \
     --set run.output="$work/run"
expect cuda_without_device 'device "cuda" asked for, but ' \
  -- "$ladon" train --device cuda --set run.output="$work/run"
expect bad_device 'unknown device "gpu0"' -- "$ladon" train --device gpu0 --set run.output="$work/run"
[ ! -e "$work/run/checkpoints" ] || [ -z "$(ls "$work/run/checkpoints")" ] || { echo "FAIL: a failed run left a checkpoint"; failures=$((failures + 1)); }

# User data as NPY: train end to end, then broken files.
/usr/bin/python3 - <<'PY'
import numpy as np
rng = np.random.default_rng(0)
x = (rng.random((96, 1, 8, 8)) * 255).astype(np.uint8)
y = (x.reshape(96, -1).mean(1) > 127).astype(np.int64)
np.save("x.npy", x); np.save("y.npy", y)
np.save("y_bad.npy", np.where(np.arange(96) == 17, 12, y))
raw = open("x.npy", "rb").read(); open("x_truncated.npy", "wb").write(raw[: len(raw) - 100])
PY
npy_config() {
  cat <<TOML
[model]
input = [1, 8, 8]
trunk = [{ op = "flatten" }, { op = "dense", out_features = 8 }, { op = "relu" }]
[[model.heads]]
name = "bright"
loss = "softmax_cross_entropy"
layers = [{ op = "dense", out_features = 2 }]
[training]
batch_size = 16
epochs = 2
[data]
dataset = "npy"
inputs = "$1"
test_inputs = "x.npy"
[[data.tasks]]
name = "bright"
classes = 2
labels = "$2"
test_labels = "y.npy"
TOML
}
npy_config x.npy y.npy > npy.toml
"$ladon" train --config npy.toml --set run.output="$work/npy-run" > npy.out
grep -q "npy:x.npy, 96 train / 96 test samples" npy.out || { echo "FAIL npy training:"; cat npy.out; failures=$((failures + 1)); }
echo "ok   npy_training: $(grep -c '^epoch' npy.out) epochs"
npy_config x_truncated.npy y.npy > truncated.toml
expect truncated_npy "x_truncated.npy" -- "$ladon" train --config truncated.toml --set run.output="$work/run2"
npy_config x.npy y_bad.npy > bad_labels.toml
expect label_out_of_range "row 17 has class 12, expected 0..1" -- "$ladon" train --config bad_labels.toml --set run.output="$work/run2"

# Checkpoints: another model's, and a corrupt one.
checkpoint="$(ls "$work"/npy-run/checkpoints/*.safetensors | tail -1)"
"$ladon" train --max-steps 2 --set run.output="$work/other" > /dev/null
other="$(ls "$work"/other/checkpoints/*.safetensors | tail -1)"
expect other_model_checkpoint "the checkpoint belongs to a different model" \
  -- "$ladon" train --config npy.toml --set run.output="$work/npy-run" --resume "$work/other"
head -c 200 "$checkpoint" > corrupt.safetensors
expect corrupt_checkpoint "corrupt.safetensors" -- "$ladon" eval --checkpoint corrupt.safetensors
expect missing_checkpoint "missing.safetensors" -- "$ladon" eval --checkpoint missing.safetensors
"$ladon" eval --checkpoint "$other" > /dev/null || { echo "FAIL: a good checkpoint did not load"; failures=$((failures + 1)); }

[ "$failures" -eq 0 ] || { echo "$failures failures"; exit 1; }
echo "all bad-input cases gave one clear line"
