#!/usr/bin/env bash
# The GPU bundle (scripts/gpu-bundle) tested on a machine without a GPU:
#
#   check.sh pack SOURCE BUILD WORK     packs BUILD itself (no second compile)
#       into WORK; the archive is at most 56 MiB and every dependency of every
#       bundled program and library resolves into the bundle, or to what the
#       GPU machine keeps (glibc, the GCC runtime, libcuda, cuBLAS/cuDNN/NCCL;
#       only those last may be "not found")
#   check.sh root SOURCE BUILD WORK     unpacks the archive into a root that
#       holds only glibc, the GCC runtime and the bundle (no /usr), and there
#       runs `ladon info`, `ladon train --max-steps 5` on the CPU, and
#       test_cuda_gpu, whose tests must all report skipped (no GPU)
#   check.sh dry-run SOURCE BUILD WORK  scripts/gpu-check --dry-run from the
#       bundle: every GPU stage skipped with a reason; then without torch and
#       without cuDNN/cuBLAS, the stages needing them fail
#   check.sh fake-gpu SOURCE BUILD WORK  scripts/gpu-check (no dry run) where
#       an nvidia-smi says there is a GPU but none is usable: the kernel tests
#       skip, which fails the stage; bench_kernels falls back to the CPU,
#       which fails its stage; training on cuda fails: nothing passes
#   check.sh devkit SOURCE BUILD WORK   the archive's development kit alone
#       (what `gpu-check --build` uses): its check program links and uses
#       every library; ladon configures from it as the GPU machine would
#       (CUDA on, no MPI, no Boost) with each package found in the kit; and
#       one source file per library compiles with no header of those
#       libraries taken from /usr/include
set -euo pipefail
mode=$1 source=$2 build=$3 work=$4
source "$source/scripts/gpu-check.d/libraries.sh"
bundle=$work/out-tree/ladon-gpu-bundle
archive=$work/out/ladon-gpu-bundle.tar.xz

fail() { echo "gpu bundle check: $*" >&2; exit 1; }

# resolves_where FILE: exits 1, naming it, on a dependency outside the allowed set.
check_dependencies() {
    local file=$1 line name target
    while read -r line; do
        name=${line%% *}
        [[ $name == linux-vdso* || $name == /lib64/ld-linux* ]] && continue
        target=$(sed -n 's/.* => \([^ ]*\).*/\1/p' <<<"$line")
        if [ "$target" = not ]; then
            may_be_missing "$name" || fail "$file: $name not found"
        elif [[ $target == "$bundle"/* ]]; then
            :
        elif left_to_gpu_machine "$name"; then
            :
        else
            fail "$file: $name resolves to $target, outside the bundle and the allowed set"
        fi
    done < <(ldd "$file" | sed 's/^\s*//')
}

pack() {
    rm -rf "$work" && mkdir -p "$work"
    "$source/scripts/gpu-bundle" --from-build "$build" --out "$work/out"
    local size
    size=$(stat -c %s "$archive")
    ((size <= 56 * 1048576)) || fail "the archive is $size bytes, over 56 MiB"
    local file checked=0
    for file in "$bundle"/bin/* "$bundle"/lib/*; do
        check_dependencies "$file"
        checked=$((checked + 1))
    done
    for program in ladon test_cuda_gpu bench_kernels bench_cpu; do
        [ -x "$bundle/bin/$program" ] || fail "no bin/$program in the bundle"
    done
    grep -q '^ *[0-9]*  bin/ladon$' "$work/out/MANIFEST" || fail "MANIFEST does not list bin/ladon"
    # The README gives the CPU epoch-1 figures the training stage compares with.
    source "$source/scripts/gpu-check.d/expected.sh"
    grep -q "$cpu_epoch1_left.*$cpu_epoch1_right" "$source/README.md" ||
        fail "README.md does not give the epoch-1 accuracies of expected.sh ($cpu_epoch1_left, $cpu_epoch1_right)"
    echo "gpu bundle: $size bytes packed, $checked programs and libraries resolve, ok"
}

# The minimal root: glibc and the GCC runtime from this machine, nothing else.
make_root() {
    local root=$1 library
    rm -rf "$root" && mkdir -p "$root/lib/x86_64-linux-gnu" "$root/lib64" "$root/tmp" "$root/proc"
    cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
    for library in libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libstdc++.so.6 libgcc_s.so.1; do
        cp -L "/lib/x86_64-linux-gnu/$library" "$root/lib/x86_64-linux-gnu/"
    done
    tar -C "$root" -xJf "$archive"
    [ ! -e "$root/usr" ] || fail "the minimal root has /usr"
}

# in_root ROOT COMMAND...: COMMAND chrooted into ROOT, with a /proc of its
# own (the loader reads /proc/self/exe to expand $ORIGIN in the programs' run
# path; every real machine has one), in a mount and pid namespace that ends
# with it; as a non-root user, in a user namespace too.
in_root() {
    local root=$1 user=()
    shift
    [ "$(id -u)" = 0 ] || user=(-r)
    unshare "${user[@]}" -m -p --fork --mount-proc="$root/proc" chroot "$root" "$@"
}

root_run() {
    local root=$work/root output
    make_root "$root"
    output=$(in_root "$root" /ladon-gpu-bundle/bin/ladon info 2>&1) || fail "ladon info: $output"
    echo "$output"
    grep -q '(no cuda: ' <<<"$output" || fail "ladon info does not say why there is no CUDA device"
    grep -q 'libnccl.so.2 could not be loaded' <<<"$output" || fail "ladon info does not say NCCL is missing"
    output=$(in_root "$root" /ladon-gpu-bundle/bin/ladon train --max-steps 5 --device cpu \
        --set run.output=/tmp/run 2>&1) || fail "ladon train: $output"
    echo "$output" | tail -3
    grep -q 'done: step 5' <<<"$output" || fail "ladon train did not reach step 5"
    local listed skipped
    listed=$(in_root "$root" /ladon-gpu-bundle/bin/test_cuda_gpu --gtest_list_tests | grep -c '^  ')
    output=$(in_root "$root" /ladon-gpu-bundle/bin/test_cuda_gpu 2>&1) || fail "test_cuda_gpu: $output"
    # One line per test ("[  SKIPPED ] Suite.Name (0 ms)"); the list at the end has no time.
    skipped=$(grep -Ec '^\[  SKIPPED \] .* \([0-9]+ ms\)$' <<<"$output" || true)
    ((listed > 0 && skipped == listed)) || fail "test_cuda_gpu: $skipped of $listed tests skipped, all expected"
    echo "minimal root: ladon info, 5 CPU steps, test_cuda_gpu $skipped of $listed skipped: ok"
}

# stage_line SUMMARY STAGE: the stage's line of summary.txt.
stage_line() { grep -E "^$2 " "$1" || fail "summary.txt has no $2 stage"; }

dry_run() {
    local out=$work/dry-run summary line stage
    summary=$out/summary.txt
    GPU_CHECK_PYTHON=/usr/bin/python3 "$bundle/scripts/gpu-check" --dry-run "$out" ||
        fail "gpu-check --dry-run failed: $(cat "$summary")"
    stage_line "$summary" machine | grep -q ' ok ' || fail "machine stage not ok"
    for stage in gpu-tests step kernels training sanitizer profiler; do
        line=$(stage_line "$summary" "$stage")
        grep -Eq "^$stage +skipped +[0-9]+s  dry run: .+" <<<"$line" || fail "not skipped with a reason: $line"
    done
    # No torch and no cuDNN/cuBLAS where gpu-check looks: their stages fail.
    out=$work/no-baselines
    summary=$out/summary.txt
    if GPU_CHECK_PYTHON=$work/no-such-python GPU_CHECK_LIBRARY_DIRS=$work/no-such-folder \
        "$bundle/scripts/gpu-check" --dry-run "$out"; then
        fail "gpu-check --dry-run passed without its baselines"
    fi
    stage_line "$summary" step | grep -q 'FAILED.*PyTorch baseline is missing' || fail "step did not fail without torch"
    stage_line "$summary" kernels | grep -q 'FAILED.*baseline missing: cuDNN' || fail "kernels did not fail without cuDNN"
    echo "dry run: every GPU stage skipped with a reason; missing baselines fail: ok"
}

fake_gpu() {
    local out=$work/fake-gpu summary=$work/fake-gpu/summary.txt line
    mkdir -p "$work/fake-bin"
    printf '#!/bin/sh\necho "GPU 0: Fake GPU (UUID: GPU-0)"\n' >"$work/fake-bin/nvidia-smi"
    chmod +x "$work/fake-bin/nvidia-smi"
    if PATH=$work/fake-bin:$PATH GPU_CHECK_PYTHON=/usr/bin/python3 GPU_CHECK_KERNEL_FILTER='^cpu/sgd_update/fashion' \
        GPU_CHECK_KERNEL_SECONDS=0.001 "$bundle/scripts/gpu-check" "$out"; then
        fail "gpu-check passed on a GPU it could not use"
    fi
    grep -q '^machine: GPU 0: Fake GPU' "$summary" || fail "summary.txt does not name the GPU nvidia-smi listed"
    line=$(stage_line "$summary" gpu-tests)
    grep -Eq 'FAILED.* ([1-9][0-9]*) skipped' <<<"$line" || fail "skipped kernel tests did not fail: $line"
    line=$(stage_line "$summary" kernels)
    grep -q 'FAILED.*does not say CUDA: bench_kernels backend: cpu' <<<"$line" || fail "a CPU fallback passed: $line"
    for stage in step training; do
        line=$(stage_line "$summary" "$stage")
        grep -q 'FAILED' <<<"$line" || fail "$stage did not fail: $line"
    done
    echo "fake GPU: skipped tests, the CPU fallback and an unusable device each fail their stage: ok"
}

# Files ladon's libraries would bring from this machine rather than the kit.
system_library_headers='^ +/usr/include/(fmt|toml\+\+|CLI|nlohmann|gtest|gmock|benchmark|zlib\.h|zconf\.h|x86_64-linux-gnu/(cblas|openblas))'

devkit() {
    local unpacked=$work/devkit kit package found
    rm -rf "$unpacked" && mkdir -p "$unpacked"
    tar -C "$unpacked" -xJf "$archive" ladon-gpu-bundle/kit ladon-gpu-bundle/lib
    kit=$unpacked/ladon-gpu-bundle/kit
    cmake -C "$kit/kit.cmake" -S "$kit/check" -B "$unpacked/check" -G Ninja >/dev/null || fail "the kit check does not configure"
    cmake --build "$unpacked/check" >/dev/null || fail "the kit check does not build"
    "$unpacked/check/devkit_check" | grep -E '^[a-zA-Z0-9+-]+ +(ok|FAILED)|^devkit check' || fail "the kit check failed"
    if ninja -C "$unpacked/check" -t deps | grep -E "$system_library_headers"; then
        fail "the kit check took headers from /usr/include"
    fi
    cmake -C "$kit/kit.cmake" -S "$source" -B "$unpacked/ladon" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_DISABLE_FIND_PACKAGE_Boost=ON >"$unpacked/configure.log" 2>&1 ||
        fail "ladon does not configure from the kit: $(tail -5 "$unpacked/configure.log")"
    for package in fmt tomlplusplus CLI11 nlohmann_json GTest benchmark; do
        found=$(sed -n "s/^${package}_DIR:PATH=//p" "$unpacked/ladon/CMakeCache.txt")
        [[ $found == "$kit"/* ]] || fail "$package found in '$found', not in the kit"
    done
    # One file per library: idx (zlib), config (toml++), config_writer (fmt),
    # dense (cblas), the tool's main (CLI11) and train (nlohmann-json),
    # bench_cpu (Benchmark), a test (GoogleTest).
    local objects=(engine/CMakeFiles/ladon_data.dir/data/idx.cpp.o engine/CMakeFiles/ladon_engine.dir/config.cpp.o
        engine/CMakeFiles/ladon_engine.dir/config_writer.cpp.o kernels/CMakeFiles/ladon_kernels_cpu.dir/cpu/dense.cpp.o
        tools/CMakeFiles/ladon_tool.dir/main.cpp.o tools/CMakeFiles/ladon_tool.dir/train.cpp.o
        bench/CMakeFiles/bench_cpu.dir/bench_cpu.cpp.o tests/CMakeFiles/test_engine.dir/cpu/test_engine_config.cpp.o)
    ninja -C "$unpacked/ladon" -j2 "${objects[@]}" >"$unpacked/build.log" 2>&1 ||
        fail "ladon's sources do not compile from the kit: $(grep -m3 error "$unpacked/build.log")"
    local deps headers
    deps=$(ninja -C "$unpacked/ladon" -t deps "${objects[@]}")
    grep -q "^ *$unpacked/ladon-gpu-bundle/kit/include/toml++/" <<<"$deps" || fail "ninja lists no header from the kit"
    headers=$(grep -E "$system_library_headers" <<<"$deps" | sort -u || true)
    [ -z "$headers" ] || fail "taken from /usr/include, not the kit: $(head -3 <<<"$headers")"
    echo "devkit: every library links and works, ladon configures from the kit and ${#objects[@]} sources compile: ok"
}

case $mode in
    pack) pack ;;
    root) root_run ;;
    dry-run) dry_run ;;
    fake-gpu) fake_gpu ;;
    devkit) devkit ;;
    *) fail "unknown mode $mode" ;;
esac
