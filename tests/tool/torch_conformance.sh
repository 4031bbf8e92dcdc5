#!/usr/bin/env bash
# Trains a small DAG model with every layer kind, then checks `ladon predict`
# against PyTorch on the checkpoint's weights (tools/torch_conformance.py).
set -euo pipefail
ladon="$1"; source_dir="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$ladon" train --config "$source_dir/tests/tool/dag_model.toml" --set run.output="$work/run" >/dev/null
checkpoint="$(ls "$work"/run/checkpoints/step-*.safetensors | tail -1)"
/usr/bin/python3 "$source_dir/tools/torch_conformance.py" --ladon "$ladon" --checkpoint "$checkpoint"
