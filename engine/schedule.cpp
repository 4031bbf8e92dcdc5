// Learning-rate schedules: constant, step and cosine, each after an optional
// linear warm-up.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "ladon/training.hpp"

namespace ladon {

float learning_rate_at(const ScheduleOptions& schedule, float base, int64_t step) {
    if (schedule.warmup_steps > 0 && step < schedule.warmup_steps)
        return base * float(step + 1) / float(schedule.warmup_steps);
    const int64_t after = step - schedule.warmup_steps;
    switch (schedule.kind) {
        case ScheduleOptions::Kind::constant: return base;
        case ScheduleOptions::Kind::step:
            return base * std::pow(schedule.gamma, float(after / std::max<int64_t>(schedule.step_size, 1)));
        case ScheduleOptions::Kind::cosine: {
            const int64_t length = std::max<int64_t>(schedule.total_steps - schedule.warmup_steps, 1);
            const double progress = std::min(1.0, double(after) / double(length));
            const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
            return float(schedule.min_learning_rate + (base - schedule.min_learning_rate) * cosine);
        }
    }
    return base;
}

}  // namespace ladon
