# shellcheck shell=bash disable=SC2154  # lib, kit, bundle: scripts/gpu-check's; fashion_mnist: libraries.sh's
# scripts/gpu-check --build: the fallback when the bundle's programs cannot
# run there. It builds on the GPU machine with what is there (cmake, a newer
# g++, nvcc) and no package manager: every library comes from the bundle's
# development kit (kit/, gpu-check.d/devkit.sh), which first proves itself
# with a small program that links each library, then ladon is configured
# with `cmake -C kit/kit.cmake` (MPI off, warnings not errors) and the
# programs are laid out as a bundle would have them.
build_layout() {
    local build=$1 root jobs
    root=$(cd "$lib/../.." && pwd)
    jobs=$(nproc)
    [ -f "$kit/kit.cmake" ] || {
        echo "no development kit at $kit: run scripts/gpu-bundle (--devkit-only takes seconds) and carry build-gpu-bundle"
        return 1
    }
    local generator=()
    command -v ninja >/dev/null && generator=(-G Ninja)
    echo "== the kit's libraries, each linked and used once"
    { cmake -C "$kit/kit.cmake" -S "$kit/check" -B "$build-kit" "${generator[@]}" &&
        cmake --build "$build-kit" && "$build-kit/devkit_check"; } || {
        echo "the development kit does not work here: see devkit_check above"
        return 1
    }
    echo "== ladon"
    cmake -C "$kit/kit.cmake" -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CUDA_ARCHITECTURES=90 || { echo "configure failed: see the log above"; return 1; }
    cmake --build "$build" -j"$jobs" --target ladon_tool test_cuda_gpu bench_kernels bench_cpu || {
        echo "build failed"
        return 1
    }
    local layout=$build/layout data=$fashion_mnist program
    [ -d "$bundle/data/fashion-mnist" ] && data=$bundle/data/fashion-mnist
    mkdir -p "$layout/bin" "$layout/data"
    for program in ladon tests/cuda/test_cuda_gpu bench/bench_kernels bench/bench_cpu; do
        ln -sf "$build/$program" "$layout/bin/"
    done
    ln -sfn "$root/examples" "$layout/examples"
    ln -sfn "$root/bench" "$layout/bench"
    ln -sfn "$root/tools" "$layout/tools"
    ln -sfn "$data" "$layout/data/fashion-mnist"
    bundle=$layout
    echo "built in $build"
}
