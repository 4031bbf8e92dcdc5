#!/usr/bin/env bash
# End-to-end recovery checks of `ladon train`:
#  1. resume: 200 steps straight == 100 steps, stop, resume to 200 (bit for bit)
#  2. SIGINT: finishes the step, writes a checkpoint, exits 130, resumable
#  3. kill -9 while checkpoints are written: every checkpoint left loads
#  4. an output folder that cannot be created is one clear error line
set -euo pipefail
ladon="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
train_losses() { grep '"split":"train"' "$1/metrics.jsonl" | sed 's/"samples_per_second":[^,]*,//'; }

# 1. resume reproduces the uninterrupted run
"$ladon" train --max-steps 200 --set run.output="$work/straight" --set run.log_every=10 >/dev/null
"$ladon" train --max-steps 100 --set run.output="$work/split" --set run.log_every=10 >/dev/null
"$ladon" train --max-steps 200 --set run.output="$work/split" --set run.log_every=10 --resume "$work/split" \
  > "$work/resume.log"
grep -q "resumed from .*step-000000100.safetensors at step 100" "$work/resume.log" || fail "resume line missing"
diff <(train_losses "$work/straight") <(train_losses "$work/split") >/dev/null \
  || fail "resumed losses differ from the uninterrupted run"
[ "$(train_losses "$work/split" | wc -l)" -eq 60 ] || fail "expected 60 training records"
echo "resume: 60 loss records identical to the uninterrupted run"

# 2. SIGINT stops cleanly with a checkpoint
"$ladon" train --epochs 50 --set run.output="$work/interrupted" > "$work/sigint.out" 2> "$work/sigint.err" &
pid=$!
for _ in $(seq 100); do grep -q "step" "$work/sigint.out" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
kill -INT "$pid"
set +e; wait "$pid"; rc=$?; set -e
[ "$rc" -eq 130 ] || fail "SIGINT exit code $rc, expected 130"
grep -q "stopped by SIGINT at step [0-9]*; checkpoint .*step-.*safetensors" "$work/sigint.err" \
  || fail "no stop line: $(cat "$work/sigint.err")"
"$ladon" eval --checkpoint "$(ls "$work"/interrupted/checkpoints/step-*.safetensors | tail -1)" >/dev/null \
  || fail "checkpoint after SIGINT does not load"
echo "sigint: exit 130, checkpoint loads"

# 3. kill -9 during checkpoint writes (one every step) never leaves a broken one
for delay in 0.7 0.9 1.1 1.3 1.5; do
  out="$work/killed-$delay"
  "$ladon" train --epochs 50 --set run.output="$out" --set run.checkpoint_every=1 --set run.keep_checkpoints=2 \
    >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for checkpoint in "$out"/checkpoints/step-*.safetensors; do
    [ -e "$checkpoint" ] || continue
    "$ladon" eval --checkpoint "$checkpoint" >/dev/null 2>&1 || fail "checkpoint $checkpoint left broken by kill -9"
  done
done
echo "kill -9: every checkpoint left behind loads"

# 4. unwritable output folder
touch "$work/a-file"
set +e
"$ladon" train --max-steps 5 --set run.output="$work/a-file/run" > /dev/null 2> "$work/unwritable.err"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "training into an unwritable folder succeeded"
grep -q "ladon: error: run folder $work/a-file/run: cannot create it" "$work/unwritable.err" \
  || fail "unexpected message: $(cat "$work/unwritable.err")"
[ "$(wc -l < "$work/unwritable.err")" -eq 1 ] || fail "expected one line"
echo "unwritable output: one clear line"
