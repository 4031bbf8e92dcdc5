# shellcheck shell=bash disable=SC2154  # exported by scripts/gpu-check, or from expected.sh
# shellcheck source-path=SCRIPTDIR
# The stages of scripts/gpu-check, most valuable first. Each runs in a child
# bash (run.sh's run_stage) with these exported: bundle (the unpacked bundle
# or the --build layout), out, work, lib, dry_run, gpu_present, python,
# cublas_dir, cudnn_dir, nccl_dir, sanitizer, ncu, LD_LIBRARY_PATH.
# Exit 0 ok, 77 skipped (the detail says why), anything else failed. Without
# a GPU (or with --dry-run) each stage runs its real commands up to the point
# where a GPU is needed; a missing baseline (cuDNN, cuBLAS, torch) fails.

source "$lib/expected.sh"

detail() { echo "$*" >>"$work/detail"; }
figures() { cat >"$work/figures-$1"; }
# no_gpu_reason: why a GPU stage stops before the GPU, or empty.
no_gpu_reason() {
    if ((dry_run)); then
        echo "dry run"
    elif ((!gpu_present)); then
        echo "no GPU visible to nvidia-smi"
    fi
}

stage_machine() {
    date -u
    uname -a
    echo "cores: $(nproc)"
    nvidia-smi || echo "nvidia-smi: none"
    cat "$bundle/BUILD_INFO" 2>/dev/null
    if command -v cuobjdump >/dev/null; then
        cuobjdump --list-elf --list-ptx "$bundle/bin/test_cuda_gpu" | sed -n 's/.*\.\(sm_[0-9a-z]*\.[a-z]*\)$/\1/p' |
            sort | uniq -c | sed 's/^/cuobjdump test_cuda_gpu: /'
    fi
    "$bundle/bin/ladon" info || return 1
    local torch
    torch=$("$python" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda, "GPU" if torch.cuda.is_available() else "no GPU")' 2>/dev/null | tail -1)
    torch=${torch:-not importable}
    echo "torch ($python): $torch"
    detail "cuBLAS ${cublas_dir:-not found}; cuDNN ${cudnn_dir:-not found}; NCCL ${nccl_dir:-not found};" \
        "compute-sanitizer ${sanitizer:-not found}; ncu ${ncu:-not found}; torch $python: $torch"
}

# test_cuda_gpu, then the NCCL checks (the mpi.nccl_* tests' programs, one
# rank each, run alone: the single-process group carries NCCL's id).
stage_gpu_tests() {
    local tests=$bundle/bin/test_cuda_gpu listed why
    listed=$("$tests" --gtest_list_tests | grep -c '^  ') || return 1
    why=$(no_gpu_reason)
    local nccl_checks=()
    [ -x "$bundle/bin/nccl_allreduce_check" ] && nccl_checks+=("nccl_allreduce_check")
    [ -x "$bundle/bin/data_parallel_gpu_check" ] &&
        nccl_checks+=("data_parallel_gpu_check nccl 1e-4" "data_parallel_gpu_check nccl 1e-4 256")
    if [ -n "$why" ]; then
        # Up to the GPU: the NCCL checks start, find no GPU and say so.
        local check
        # shellcheck disable=SC2086  # a check is a program and its arguments
        for check in "${nccl_checks[@]}"; do "$bundle/bin/"$check | tail -1; done
        detail "$why: test_cuda_gpu lists $listed tests; ${#nccl_checks[@]} NCCL checks"
        return 77
    fi
    "$tests" --gtest_color=no | tee "$work/tests.out"
    local rc=${PIPESTATUS[0]} passed skipped failed
    passed=$(grep -c '^\[       OK \]' "$work/tests.out")
    skipped=$(grep -Ec '^\[  SKIPPED \] .* \([0-9]+ ms\)$' "$work/tests.out")
    failed=$(grep -Ec '^\[  FAILED  \] .* \([0-9]+ ms\)$' "$work/tests.out")
    local text="test_cuda_gpu: $passed passed, $skipped skipped, $failed failed of $listed"
    # A GPU is here: a skip is a driver or runtime problem, not a pass.
    ((skipped > 0)) && rc=1
    if [ -z "$nccl_dir" ]; then
        detail "$text; NCCL checks not run: libnccl.so.2 not found"
        return 1
    fi
    local ok=0 check
    for check in "${nccl_checks[@]}"; do
        echo "--- $check"
        # shellcheck disable=SC2086  # a check is a program and its arguments
        "$bundle/bin/"$check 2>&1 | tee "$work/nccl.out"
        [ "${PIPESTATUS[0]}" = 0 ] && grep -q ', ok$\|: ok$\| ok$' "$work/nccl.out" && ok=$((ok + 1))
    done
    ((ok < ${#nccl_checks[@]})) && rc=1
    detail "$text; NCCL checks (one rank, no mpirun): $ok of ${#nccl_checks[@]} ok"
    return "$rc"
}

# ladon with and without CUDA graphs beside PyTorch eager and torch.compile,
# TF32 on (PyTorch's default for convolutions) and off, batch 128.
stage_step() {
    if ! "$python" -c 'import torch' 2>/dev/null; then
        detail "no torch in $python: the PyTorch baseline is missing"
        return 1
    fi
    local why rows
    why=$(no_gpu_reason)
    if [ -n "$why" ]; then
        rows=$(cd "$bundle" && bin/bench_cpu --benchmark_list_tests=true | grep -c '^training_step/')
        detail "$why: bench_cpu lists $rows training_step rows; PyTorch $("$python" -c 'import torch; print(torch.__version__)') in $python"
        return 77
    fi
    if ! "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        detail "torch in $python sees no GPU: the PyTorch baseline is missing"
        return 1
    fi
    # The table goes straight into the summary's figures, row by row, so
    # that a stage cut off by its limit still shows the rows it measured.
    (cd "$bundle" && bench/compare --device cuda --tf32 both --python "$python" --bench-cpu bin/bench_cpu \
        --models "${GPU_CHECK_STEP_MODELS:-fashion_mtl,seed_article}" --seconds "${GPU_CHECK_STEP_SECONDS:-1}") |
        tee "$work/figures-2-step"
    local rc=${PIPESTATUS[0]}
    detail "$(grep -c '^| [a-z_0-9]* | ' "$work/figures-2-step") of 6 rows per model (table below: samples/s, ms per step," \
        "peak GPU MiB; ladon's is its one planned allocation)"
    return "$rc"
}

# Every kernel beside cuDNN/cuBLAS with TF32 off and on.
stage_kernels() {
    local missing=""
    [ -n "$cudnn_dir" ] || missing+=" cuDNN (libcudnn.so.9)"
    [ -n "$cublas_dir" ] || missing+=" cuBLAS (libcublas.so.13)"
    if [ -n "$missing" ]; then
        detail "baseline missing:$missing not found in ${library_search:-the searched folders}"
        return 1
    fi
    local bench=$bundle/bin/bench_kernels why listing
    listing=$("$bench" --benchmark_list_tests=true) || { detail "bench_kernels does not start"; return 1; }
    why=$(no_gpu_reason)
    if [ -n "$why" ]; then
        detail "$why: $(head -1 <<<"$listing"); $(grep -c / <<<"$listing") rows listed"
        return 77
    fi
    # Batch 128 and the optimizers by default (72 of the 144 rows): each conv
    # row runs cudnnFind twice (FMA and default math) before it is timed.
    "$bench" --benchmark_min_time="${GPU_CHECK_KERNEL_SECONDS:-0.03}" --benchmark_out="$out/kernels.json" \
        --benchmark_filter="${GPU_CHECK_KERNEL_FILTER:-(batch:128|parameters)}" --benchmark_out_format=json \
        --benchmark_counters_tabular=true | tee "$work/kernels.out"
    local rc=${PIPESTATUS[0]} backend
    backend=$(grep -m1 '^bench_kernels backend' "$work/kernels.out")
    if [[ $backend != "bench_kernels backend: cuda"* ]]; then
        detail "the backend line does not say CUDA: ${backend:-none}"
        return 1
    fi
    "$python" "$lib/kernels_summary.py" "$out/kernels.json" --table | tee "$work/kernels.md"
    "$python" "$lib/kernels_summary.py" "$out/kernels.json" | figures 3-kernels
    local errors
    errors=$(grep -c 'ERROR OCCURRED' "$work/kernels.out")
    ((errors > 0)) && rc=1
    detail "${backend#bench_kernels backend: }; $errors rows with errors"
    return "$rc"
}

# One epoch of fashion_mtl on the GPU against the CPU backend's epoch-1 test
# accuracies (the README's, in expected.sh).
stage_training() {
    local run=(--config "$bundle/examples/fashion_mtl.toml" --set "data.directory=$bundle/data/fashion-mnist")
    local why
    why=$(no_gpu_reason)
    if [ -n "$why" ]; then
        "$bundle/bin/ladon" train "${run[@]}" --device cpu --max-steps 1 --set "run.output=$work/run-cpu" || return 1
        detail "$why: the config and the bundle's Fashion-MNIST load, one CPU step ran"
        return 77
    fi
    local began
    began=$(date +%s.%N)
    "$bundle/bin/ladon" train "${run[@]}" --device cuda --epochs 1 --set "run.output=$work/run" 2>&1 |
        tee "$work/train.out"
    local rc=${PIPESTATUS[0]} seconds
    seconds=$(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    ((rc == 0)) || { detail "ladon train failed (exit $rc): $(grep -m1 'error' "$work/train.out")"; return "$rc"; }
    local line left right
    line=$(grep -E '^ *test ' "$work/train.out" | tail -1)
    left=$(sed -nE 's/.* left loss [0-9.]+ accuracy ([0-9.]+).*/\1/p' <<<"$line")
    right=$(sed -nE 's/.* right loss [0-9.]+ accuracy ([0-9.]+).*/\1/p' <<<"$line")
    local verdict
    verdict=$(awk -v l="$left" -v r="$right" -v el="$cpu_epoch1_left" -v er="$cpu_epoch1_right" 'BEGIN {
        d1 = l - el; d2 = r - er; if (d1 < 0) d1 = -d1; if (d2 < 0) d2 = -d2
        print (l != "" && r != "" && d1 <= 0.01 && d2 <= 0.01) ? "within" : "OUTSIDE" }')
    local epoch_seconds
    epoch_seconds=$(sed -nE 's|^epoch 1/1 +step [0-9]+ +([0-9.]+) s.*|\1|p' "$work/train.out" | tail -1)
    detail "epoch 1: ${epoch_seconds:-?} s (process ${seconds} s); test accuracy left ${left:-?} right ${right:-?}," \
        "CPU epoch 1: $cpu_epoch1_left / $cpu_epoch1_right: $verdict 1 point"
    [ "$verdict" = within ]
}

# compute-sanitizer's memcheck, racecheck and synccheck on a short selection
# of the kernel tests (the kernels that share memory or synchronise a block).
sanitizer_filter='CudaConv2d.*:CudaDense.*:CudaLoss.*:CudaBatchNorm.TrainingForwardMatchesCpu:CudaBatchNorm.BackwardAccumulatesLikeCpuAndIsDeterministic:CudaPool.MaxForwardMatchesCpuBitForBitWithTiesAndNan'
stage_sanitizer() {
    local selected why
    selected=$("$bundle/bin/test_cuda_gpu" --gtest_list_tests --gtest_filter="$sanitizer_filter" | grep -c '^  ')
    why=$(no_gpu_reason)
    # A tool, not a baseline: missing here (no GPU) it only skips.
    if [ -z "$sanitizer" ]; then
        detail "${why:+$why: }compute-sanitizer not found (searched PATH and the CUDA toolkit)"
        [ -n "$why" ] && return 77
        return 1
    fi
    if [ -n "$why" ]; then
        "$sanitizer" --version | tail -1
        detail "$why: memcheck, racecheck, synccheck on $selected tests with $sanitizer"
        return 77
    fi
    local tool rc=0 summary=()
    for tool in memcheck racecheck synccheck; do
        echo "--- $tool"
        "$sanitizer" --tool "$tool" --error-exitcode 1 "$bundle/bin/test_cuda_gpu" --gtest_brief=1 \
            --gtest_filter="$sanitizer_filter" 2>&1 | tee "$work/sanitizer.out"
        [ "${PIPESTATUS[0]}" = 0 ] || rc=1
        summary+=("$tool: $(grep -Eo '(ERROR|RACECHECK) SUMMARY: .*' "$work/sanitizer.out" | tail -1)")
    done
    detail "$selected tests; ${summary[*]}"
    return "$rc"
}

# ncu on ladon's conv kernels (fashion_mtl's conv2 at batch 128 in
# bench_kernels, one launch of each pass):
# achieved occupancy, memory throughput and issue-slot use.
stage_profiler() {
    local why
    why=$(no_gpu_reason)
    if [ -z "$ncu" ]; then
        detail "${why:+$why: }ncu not found (searched PATH and the CUDA toolkit)"
        [ -n "$why" ] && return 77
        return 1
    fi
    if [ -n "$why" ]; then
        "$ncu" --version | tail -1
        detail "$why: ncu --clock-control none on the conv kernels of bench_kernels"
        return 77
    fi
    local metrics=sm__warps_active.avg.pct_of_peak_sustained_active
    metrics+=,gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed
    metrics+=,sm__inst_issued.avg.pct_of_peak_sustained_active,gpu__time_duration.sum
    local pass rc=0
    : >"$work/ncu.csv"
    for pass in forward backward_data backward_filter; do
        "$ncu" --clock-control none --kernel-name-base function --kernel-name "regex:^conv2d_${pass}_kernel" \
            --launch-count 1 --metrics "$metrics" --csv "$bundle/bin/bench_kernels" --benchmark_min_time=0.001 \
            --benchmark_filter="^cuda/conv2d_${pass}/fashion_mtl.conv2/batch:128" | tee -a "$work/ncu.csv"
        [ "${PIPESTATUS[0]}" = 0 ] || rc=1
    done
    "$python" "$lib/ncu_summary.py" "$work/ncu.csv" | figures 4-profile
    detail "$(grep -c '^"' "$work/ncu.csv") metric rows (table below)"
    return "$rc"
}
