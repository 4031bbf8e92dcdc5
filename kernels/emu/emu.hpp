#pragma once
// The CUDA execution model on the CPU, for compiling CUDA kernel sources with
// g++ (LADON_EMU defined). Kernel files do not include this directly: they
// include kernels/cuda/device.hpp, which picks CUDA's headers under nvcc and
// this one otherwise. kernels/emu/README.md describes the model and its limits.
// Every part includes what it needs, keywords.hpp (CUDA's headers, then the
// keywords redefined) included before any use of a CUDA keyword.
#include <cstdio>  // device-side printf

#include "kernels/emu/atomics.hpp"
#include "kernels/emu/builtins.hpp"
#include "kernels/emu/grid.hpp"
#include "kernels/emu/keywords.hpp"
#include "kernels/emu/math.hpp"
#include "kernels/emu/runtime.hpp"
#include "kernels/emu/shared_memory.hpp"
#include "kernels/emu/sync.hpp"
#include "kernels/emu/tensor_core.hpp"
