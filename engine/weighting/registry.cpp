// The task-weighting table: every method's definition, in TaskWeighting order.
#if !defined(LADON_OPS_CUDA)
#include <array>

#include "engine/weighting/weighting.hpp"
#include "engine/weighting/weighting_list.hpp"

namespace ladon::engine {

#define LADON_DECLARE_WEIGHTING(name) extern const TaskWeightingMethod name##_weighting;
LADON_TASK_WEIGHTINGS(LADON_DECLARE_WEIGHTING)
#undef LADON_DECLARE_WEIGHTING

namespace {
#define LADON_WEIGHTING_ADDRESS(name) &name##_weighting,
constexpr std::array table{LADON_TASK_WEIGHTINGS(LADON_WEIGHTING_ADDRESS)};
#undef LADON_WEIGHTING_ADDRESS
}  // namespace

std::span<const TaskWeightingMethod* const> task_weighting_methods() { return table; }

const TaskWeightingMethod& task_weighting_method(TaskWeighting kind) { return *table.at(std::size_t(kind)); }

const TaskWeightingMethod* find_task_weighting(std::string_view name) {
    for (const TaskWeightingMethod* method : table)
        if (name == method->name) return method;
    return nullptr;
}

}  // namespace ladon::engine

#else  // the CUDA half
#include <array>

#include "engine/weighting/cuda_weighting.hpp"
#include "engine/weighting/weighting_list.hpp"

namespace ladon::engine {
inline namespace LADON_CUDA_BACKEND_NAMESPACE {

#define LADON_DECLARE_WEIGHTING(name) extern const CudaTaskWeightingMethod name##_cuda_weighting;
LADON_TASK_WEIGHTINGS(LADON_DECLARE_WEIGHTING)
#undef LADON_DECLARE_WEIGHTING

namespace {
#define LADON_WEIGHTING_ADDRESS(name) &name##_cuda_weighting,
constexpr std::array table{LADON_TASK_WEIGHTINGS(LADON_WEIGHTING_ADDRESS)};
#undef LADON_WEIGHTING_ADDRESS
}  // namespace

const CudaTaskWeightingMethod& cuda_task_weighting_method(TaskWeighting kind) { return *table.at(std::size_t(kind)); }

}  // namespace LADON_CUDA_BACKEND_NAMESPACE
}  // namespace ladon::engine
#endif
