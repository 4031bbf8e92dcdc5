# shellcheck shell=bash
# Sourced by scripts/gpu-bundle: the development kit that lets
# `scripts/gpu-check --build` compile ladon on a GPU machine that has cmake,
# g++ and nvcc but none of Debian's development packages and no package
# manager. The kit is the bundle's kit/ folder:
#   include/        fmt (used header-only), toml++, CLI11, nlohmann-json,
#                   GoogleTest, Google Benchmark, OpenBLAS's cblas.h, zlib.h
#   lib/            GoogleTest as static archives (our g++ 12 built them; a
#                   newer g++ links them), and links to the bundle's own
#                   OpenBLAS, Benchmark and zlib with what they load
#   lib/cmake/      one small package file each, for ladon's find_package
#   kit.cmake       `cmake -C kit/kit.cmake`: the prefix, OpenBLAS and zlib
#                   by path, MPI off (the machine has none), -Werror off
#   check/          a program that links each library and uses it once
# libgomp stays the machine's own (its g++'s OpenMP runtime), so only what
# OpenBLAS needs besides goes into lib/.

devkit_headers=(fmt toml++ CLI nlohmann gtest gmock benchmark zlib.h zconf.h)
devkit_shared=(libopenblas.so.0 libgfortran.so.5 libquadmath.so.0 libbenchmark.so.1debian libz.so.1)

# devkit_library_source SONAME: where this machine keeps it.
devkit_library_source() {
    case $1 in
        libopenblas.so.0) echo "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0" ;;
        *) echo "/usr/lib/x86_64-linux-gnu/$1" ;;
    esac
}

# stage_devkit BUNDLE SOURCE_ROOT: writes BUNDLE/kit; the shared libraries go
# to BUNDLE/lib (where a full bundle already has most of them), whose RUNPATH
# gpu-bundle sets afterwards.
stage_devkit() {
    local bundle=$1 root=$2 kit=$1/kit name source
    mkdir -p "$kit/include" "$kit/lib/cmake" "$bundle/lib"
    for name in "${devkit_headers[@]}"; do
        source=/usr/include/$name
        [ -e "$source" ] || { echo "gpu-bundle: no $source here (scripts/setup installs it)" >&2; return 1; }
        cp -r "$source" "$kit/include/"
    done
    cp /usr/include/x86_64-linux-gnu/openblas-openmp/{cblas.h,openblas_config.h} "$kit/include/"
    cp /usr/lib/x86_64-linux-gnu/{libgtest,libgtest_main}.a "$kit/lib/"
    for name in "${devkit_shared[@]}"; do
        source=$(devkit_library_source "$name")
        [ -e "$bundle/lib/$name" ] || cp -L "$source" "$bundle/lib/$name"
        ln -sfn "../../lib/$name" "$kit/lib/$name"
    done
    write_devkit_packages "$kit/lib/cmake"
    cp "$root/scripts/gpu-check.d/devkit.cmake" "$kit/kit.cmake"
    cp -r "$root/scripts/gpu-check.d/devkit-check" "$kit/check"
}

# write_devkit_packages DIR: a <Name>Config.cmake per package ladon finds.
write_devkit_packages() {
    local dir=$1
    # shellcheck disable=SC2016  # for CMake to expand
    local prefix='get_filename_component(_kit "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)'
    header_only() {  # header_only PACKAGE TARGET [DEFINITIONS]
        mkdir -p "$dir/$1"
        cat >"$dir/$1/$1Config.cmake" <<CMAKE
# ladon's GPU development kit (scripts/gpu-check.d/devkit.sh): $1, header-only.
$prefix
if(NOT TARGET $2)
  add_library($2 INTERFACE IMPORTED)
  set_target_properties($2 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "\${_kit}/include"
    INTERFACE_COMPILE_DEFINITIONS "${3:-}")
endif()
CMAKE
    }
    header_only fmt fmt::fmt FMT_HEADER_ONLY=1
    header_only tomlplusplus tomlplusplus::tomlplusplus
    header_only CLI11 CLI11::CLI11
    header_only nlohmann_json nlohmann_json::nlohmann_json
    mkdir -p "$dir/GTest" "$dir/benchmark"
    cat >"$dir/GTest/GTestConfig.cmake" <<CMAKE
# ladon's GPU development kit (scripts/gpu-check.d/devkit.sh): GoogleTest, static.
$prefix
include(CMakeFindDependencyMacro)
find_dependency(Threads)
if(NOT TARGET GTest::gtest)
  add_library(GTest::gtest STATIC IMPORTED)
  set_target_properties(GTest::gtest PROPERTIES IMPORTED_LOCATION "\${_kit}/lib/libgtest.a"
    INTERFACE_INCLUDE_DIRECTORIES "\${_kit}/include" INTERFACE_LINK_LIBRARIES Threads::Threads)
  add_library(GTest::gtest_main STATIC IMPORTED)
  set_target_properties(GTest::gtest_main PROPERTIES IMPORTED_LOCATION "\${_kit}/lib/libgtest_main.a"
    INTERFACE_LINK_LIBRARIES GTest::gtest)
endif()
CMAKE
    cat >"$dir/benchmark/benchmarkConfig.cmake" <<CMAKE
# ladon's GPU development kit (scripts/gpu-check.d/devkit.sh): Google Benchmark.
$prefix
include(CMakeFindDependencyMacro)
find_dependency(Threads)
if(NOT TARGET benchmark::benchmark)
  add_library(benchmark::benchmark SHARED IMPORTED)
  set_target_properties(benchmark::benchmark PROPERTIES IMPORTED_LOCATION "\${_kit}/lib/libbenchmark.so.1debian"
    IMPORTED_SONAME libbenchmark.so.1debian
    INTERFACE_INCLUDE_DIRECTORIES "\${_kit}/include" INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()
CMAKE
    unset -f header_only
}
