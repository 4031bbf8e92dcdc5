#pragma once
// Every task weighting method, in TaskWeighting order
// (include/ladon/training.hpp). X(name) names name_weighting
// (TaskWeightingMethod) and name_cuda_weighting (CudaTaskWeightingMethod) in
// engine/weighting/<name>.cpp.
#define LADON_TASK_WEIGHTINGS(X) \
    X(fixed)                     \
    X(uncertainty)               \
    X(rlw)
