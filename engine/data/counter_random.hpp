#pragma once
// Counter-based randomness for datasets: the n-th random word of sample
// (seed, index) is a pure function of the three, so `load` can draw any
// sample's values directly, from any thread, with no generator state.
#include <cstdint>

namespace ladon::data {

// splitmix64's finaliser: a bijection on 64-bit words with good avalanche.
constexpr uint64_t mix64(uint64_t value) {
    value += 0x9e3779b97f4a7c15ull;
    value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ull;
    value = (value ^ (value >> 27)) * 0x94d049bb133111ebull;
    return value ^ (value >> 31);
}

class CounterRandom {
public:
    constexpr CounterRandom(uint64_t seed, uint64_t index) : key_(mix64(mix64(seed) ^ index)) {}

    // Draw number `counter` of this sample; distinct counters are independent.
    constexpr uint64_t word(uint64_t counter) const { return mix64(key_ ^ mix64(counter)); }

    // Uniform in [low, high]. The modulo bias is below 2^-40 for any range a
    // dataset uses.
    constexpr int64_t uniform_int(uint64_t counter, int64_t low, int64_t high) const {
        const auto span = static_cast<uint64_t>(high - low) + 1;
        return low + static_cast<int64_t>(word(counter) % span);
    }

    // Uniform in [0, 1), with 24 random bits (all a float holds).
    constexpr float uniform_float(uint64_t counter) const {
        return static_cast<float>(word(counter) >> 40) * (1.0f / 16777216.0f);
    }

private:
    uint64_t key_;
};

}  // namespace ladon::data
