# ladon's GPU development kit (scripts/gpu-check.d/devkit.sh), as a CMake
# initial cache: cmake -C kit/kit.cmake -S SOURCE -B BUILD. Every library
# ladon finds comes from the kit; MPI is left out (the GPU machine has none)
# and warnings are not errors (its g++ is newer than CI's).
get_filename_component(_kit "${CMAKE_CURRENT_LIST_DIR}" ABSOLUTE)
set(CMAKE_PREFIX_PATH "${_kit}" CACHE PATH "ladon's development kit")
set(LADON_OPENBLAS_OPENMP "${_kit}/lib/libopenblas.so.0" CACHE FILEPATH "OpenBLAS (OpenMP build), from the kit")
set(ZLIB_INCLUDE_DIR "${_kit}/include" CACHE PATH "zlib.h, from the kit")
set(ZLIB_LIBRARY "${_kit}/lib/libz.so.1" CACHE FILEPATH "zlib, from the kit")
# cblas.h, which ladon includes without a package.
set(CMAKE_CXX_STANDARD_INCLUDE_DIRECTORIES "${_kit}/include" CACHE STRING "")
set(LADON_ENABLE_MPI OFF CACHE BOOL "")
set(LADON_WERROR OFF CACHE BOOL "")
