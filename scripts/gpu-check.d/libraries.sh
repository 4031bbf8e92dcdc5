# shellcheck shell=bash disable=SC2034  # read by the scripts that source this
# Sourced by scripts/gpu-bundle, scripts/gpu-check and the bundle's CI test:
# which shared libraries the bundle leaves to the GPU machine, and where that
# machine keeps them.

# The libraries a bundled program may load from the machine it runs on:
# glibc and the dynamic loader, the GCC runtime (libstdc++, libgcc_s: that
# machine's g++ is newer than ours, and newer runtimes run older programs),
# the driver (libcuda), and cuBLAS, cuDNN and NCCL, which gpu-check finds by
# path in the PyTorch wheels or the toolkit and puts on LD_LIBRARY_PATH.
left_to_gpu_machine_description="glibc (libc, libm, libdl, libpthread, librt, ld-linux), GCC runtime (libstdc++, libgcc_s), driver (libcuda), cuBLAS/cuBLASLt, cuDNN, NCCL"
glibc_pattern='^(ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libresolv|libutil|libmvec)\.so'
gcc_runtime_pattern='^(libstdc\+\+|libgcc_s)\.so'
nvidia_pattern='^(libcuda|libcublas|libcublasLt|libcudnn[a-z_]*|libnccl)\.so'

# left_to_gpu_machine SONAME: true where the bundle does not carry it.
left_to_gpu_machine() {
    [[ $1 =~ $glibc_pattern || $1 =~ $gcc_runtime_pattern || $1 =~ $nvidia_pattern ]]
}

# The NVIDIA libraries that may be missing here and there until gpu-check
# puts their folders on LD_LIBRARY_PATH (ldd: "not found").
may_be_missing() {
    [[ $1 =~ $nvidia_pattern ]]
}

# Debian's dataset-fashion-mnist, which fashion_mtl reads.
fashion_mnist=/usr/share/datasets/fashion-mnist

# default_library_dirs PYTHON: where a GPU machine keeps cuBLAS, cuDNN and
# NCCL, colon-separated: PYTHON's NVIDIA wheels (site-packages/nvidia/*/lib),
# then the CUDA toolkit's folders.
default_library_dirs() {
    local dirs=() site
    while read -r site; do
        [ -d "$site/nvidia" ] && dirs+=("$site/nvidia")
    done < <("$1" -c 'import site; print("\n".join(site.getsitepackages()))' 2>/dev/null)
    local folder
    for folder in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
        [ -d "$folder" ] && dirs+=("$folder")
    done
    local IFS=:
    echo "${dirs[*]}"
}

# library_dir PATTERN DIRS: the folder of the first file named PATTERN
# (libcudnn.so.9*: versioned names only, which is all a wheel has) under
# the colon-separated DIRS, or nothing.
library_dir() {
    local pattern=$1 dir found
    local IFS=:
    for dir in $2; do
        found=$(find -L "$dir" -maxdepth 3 -name "$pattern" -print -quit 2>/dev/null)
        [ -n "$found" ] && { dirname "$found"; return; }
    done
}
