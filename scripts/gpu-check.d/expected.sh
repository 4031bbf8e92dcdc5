# shellcheck shell=bash disable=SC2034  # read by stages.sh and the bundle's CI test
# The CPU backend's test accuracies after epoch 1 of examples/fashion_mtl.toml
# (seed 1, batch 128), as README.md gives them; gpu-check's training stage
# requires the GPU's within 1 point. The bundle's CI test checks that the
# README still says these figures.
cpu_epoch1_left=0.7726
cpu_epoch1_right=0.7749
