# shellcheck shell=bash disable=SC2154  # lib: scripts/gpu-check's; fashion_mnist: libraries.sh's
# scripts/gpu-check --build: the fallback when no bundle came along. It
# builds on the GPU machine with what is there (cmake, a newer g++, nvcc) and
# no package manager, warnings not errors (LADON_WERROR=OFF), then lays the
# programs out as a bundle would. ladon needs fmt, toml++, CLI11,
# nlohmann-json, GoogleTest, Google Benchmark and OpenBLAS, none of which such
# a machine has and none of which is vendored: CMake's first missing package
# is then the stage's failure, named in one line.
build_layout() {
    local build=$1 root
    root=$(cd "$lib/../.." && pwd)
    local generator=()
    command -v ninja >/dev/null && generator=(-G Ninja)
    if ! cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
        -DLADON_WERROR=OFF 2>&1 | tee "$build.configure.log"; then
        local missing
        missing=$(grep -Eo 'Could not find a package configuration file provided by "[^"]+"|Could NOT find [A-Za-z_+]+' \
            "$build.configure.log" | head -1)
        echo "configure failed: ${missing:-see the log}; this machine lacks ladon's libraries (no package manager)"
        return 1
    fi
    cmake --build "$build" -j"$(nproc)" --target ladon_tool test_cuda_gpu bench_kernels bench_cpu || {
        echo "build failed"
        return 1
    }
    bundle=$build/layout
    mkdir -p "$bundle/bin" "$bundle/data"
    local program
    for program in ladon tests/cuda/test_cuda_gpu bench/bench_kernels bench/bench_cpu \
        tests/mpi/nccl_allreduce_check tests/mpi/data_parallel_gpu_check; do
        [ -x "$build/$program" ] && ln -sf "$build/$program" "$bundle/bin/"
    done
    ln -sfn "$root/examples" "$bundle/examples"
    ln -sfn "$root/bench" "$bundle/bench"
    ln -sfn "$root/tools" "$bundle/tools"
    ln -sfn "$fashion_mnist" "$bundle/data/fashion-mnist"
    echo "built in $build (the training stage needs $fashion_mnist)"
}
