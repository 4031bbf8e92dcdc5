#pragma once
// Small helpers shared by the conv2d, dense and pooling op tests: a scoped
// OpenMP thread count (so both schedules of a kernel run whatever machine the
// test is on) and a comparison against a double-precision reference that
// reports the first mismatch instead of thousands.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace ladon::testing {

class ScopedThreadCount {
public:
    explicit ScopedThreadCount(int threads) : previous_(omp_get_max_threads()) { omp_set_num_threads(threads); }
    ~ScopedThreadCount() { omp_set_num_threads(previous_); }
    ScopedThreadCount(const ScopedThreadCount&) = delete;
    ScopedThreadCount& operator=(const ScopedThreadCount&) = delete;

private:
    int previous_;
};

// |actual - expected| <= tolerance * max(1, |expected|) for every element.
inline void expect_all_near(const std::vector<float>& actual, const std::vector<double>& expected, double tolerance,
                            const std::string& what) {
    ASSERT_EQ(actual.size(), expected.size()) << what;
    for (std::size_t i = 0; i < actual.size(); ++i) {
        const double bound = tolerance * std::max(1.0, std::abs(expected[i]));
        ASSERT_NEAR(actual[i], expected[i], bound) << what << " [" << i << "] of " << actual.size();
    }
}

inline std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

}  // namespace ladon::testing
