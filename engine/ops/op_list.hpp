#pragma once
// Every op, in OpKind order (include/ladon/model.hpp): adding an op adds its
// line here, after its OpKind. X(name) names name_op (OpDefinition) and
// name_cuda (CudaOpDefinition) in the op's file.
#define LADON_OPS(X)           \
    X(conv2d)          \
    X(max_pool2d)      \
    X(avg_pool2d)      \
    X(dense)           \
    X(relu)            \
    X(leaky_relu)      \
    X(sigmoid)         \
    X(tanh)            \
    X(flatten)         \
    X(batch_norm)      \
    X(dropout)         \
    X(add)             \
    X(concat)          \
    X(softmax)         \
    X(global_avg_pool) \
    X(multiply)        \
    X(mixture)
