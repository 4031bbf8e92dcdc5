#pragma once
// Row-major single-precision GEMM through OpenBLAS, C = alpha * op(A) op(B) + beta * C,
// with ladon's 64-bit sizes. CBLAS takes 32-bit `blasint` sizes, so an op checks
// its sizes with require_blas_size *before* it opens a parallel region (an
// exception must not escape one); gemm itself only narrows.
//
// Threading follows from linking OpenBLAS's OpenMP build: a call made inside
// one of our parallel regions runs on the calling thread alone, a call made
// outside uses omp_get_max_threads() threads. OpenBLAS splits a GEMM over rows
// and columns of C, never over the inner dimension, so either way the result
// does not depend on scheduling.
#include <cblas.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace ladon::cpu::detail {

inline void require_blas_size(const char* op, const char* what, int64_t value) {
    if (value < 0 || value > std::numeric_limits<int32_t>::max())
        throw std::invalid_argument(std::string(op) + ": " + what + " = " + std::to_string(value) +
                                    " does not fit the 32-bit sizes of a BLAS call (expected 0 .. 2^31 - 1)");
}

// m, n, k are the sizes of op(A) [m, k], op(B) [k, n] and C [m, n].
inline void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
        // BLAS would still scale C by beta; keep that meaning without relying on
        // how a library treats an empty inner dimension.
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans,
                static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
                static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

}  // namespace ladon::cpu::detail
