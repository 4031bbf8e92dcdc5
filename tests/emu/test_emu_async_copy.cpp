// ldmatrix and cp.async (kernels/cuda/tensor_core.cuh) under the emulator:
// fragments against the ISA's formulas, ragged tiles with zero-fill, a
// three-stage pipeline, and the shared-memory bank-conflict count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "emu/emu_test_support.hpp"
#include "kernels/cuda/tensor_core.cuh"

namespace ladon::emu_test {
namespace {

namespace tc = cuda::tensor_core;

constexpr int tile_rows = 32;

// 32 rows of eight 16-bit elements in shared memory, `row_stride` uint4s
// apart; lane l names row `order[l]`; every lane stores its registers.
template <int Matrices, bool Transposed>
__global__ void load_matrices(const std::uint16_t* rows, const int* order, int row_stride, std::uint32_t* output) {
    LADON_SHARED(uint4, tile, [tile_rows * 8]);
    const int lane = static_cast<int>(threadIdx.x);
    std::memcpy(&tile[lane * row_stride], rows + lane * 8, 16);
    __syncthreads();
    std::uint32_t registers[Matrices];
    tc::ldmatrix<Matrices, Transposed>(registers, &tile[order[lane] * row_stride]);
    for (int i = 0; i < Matrices; ++i) output[lane * 4 + i] = registers[i];
}

template <int Matrices, bool Transposed>
void expect_ldmatrix_fragments() {
    std::vector<std::uint16_t> rows(tile_rows * 8);
    std::iota(rows.begin(), rows.end(), std::uint16_t{100});
    std::vector<int> order(tile_rows);
    for (int lane = 0; lane < tile_rows; ++lane) order[lane] = (lane * 7 + 3) % tile_rows;  // lanes name rows out of order
    DeviceBuffer<std::uint16_t> device_rows(rows);
    DeviceBuffer<int> device_order(order);
    DeviceBuffer<std::uint32_t> output(tile_rows * 4);
    output.zero();
    ASSERT_CUDA_SUCCESS(cuda::launch(load_matrices<Matrices, Transposed>, dim3(1), dim3(32), 0, nullptr,
                                     device_rows.get(), device_order.get(), 1, output.get()));
    const std::vector<std::uint32_t> registers = output.download();
    // Matrix i, row r is the row lane 8 i + r named.
    const auto element = [&](int matrix, int row, int column) { return rows[order[matrix * 8 + row] * 8 + column]; };
    for (int lane = 0; lane < 32; ++lane)
        for (int i = 0; i < Matrices; ++i) {
            const std::uint32_t low = Transposed ? element(i, lane % 4 * 2, lane / 4) : element(i, lane / 4, lane % 4 * 2);
            const std::uint32_t high =
                Transposed ? element(i, lane % 4 * 2 + 1, lane / 4) : element(i, lane / 4, lane % 4 * 2 + 1);
            ASSERT_EQ(low | high << 16, registers[lane * 4 + i]) << "lane " << lane << ", register " << i;
        }
}

TEST(EmuLdmatrix, X1GivesEveryLaneItsRowPair) { expect_ldmatrix_fragments<1, false>(); }
TEST(EmuLdmatrix, X2GivesEveryLaneItsRowPair) { expect_ldmatrix_fragments<2, false>(); }
TEST(EmuLdmatrix, X4GivesEveryLaneItsRowPair) { expect_ldmatrix_fragments<4, false>(); }
TEST(EmuLdmatrix, X1TransposedGivesEveryLaneItsColumnPair) { expect_ldmatrix_fragments<1, true>(); }
TEST(EmuLdmatrix, X2TransposedGivesEveryLaneItsColumnPair) { expect_ldmatrix_fragments<2, true>(); }
TEST(EmuLdmatrix, X4TransposedGivesEveryLaneItsColumnPair) { expect_ldmatrix_fragments<4, true>(); }

// Rows 16 bytes apart cover all 32 banks once per matrix; rows 128 bytes
// apart all fall in the same four banks: 8 wavefronts per matrix.
TEST(EmuLdmatrix, CountsBankConflictsPerMatrix) {
    std::vector<std::uint16_t> rows(tile_rows * 8, 1);
    std::vector<int> order(tile_rows);
    std::iota(order.begin(), order.end(), 0);
    DeviceBuffer<std::uint16_t> device_rows(rows);
    DeviceBuffer<int> device_order(order);
    DeviceBuffer<std::uint32_t> output(tile_rows * 4);
    for (const int stride : {1, 8}) {
        emu::reset_shared_bank_conflicts();
        ASSERT_CUDA_SUCCESS(cuda::launch(load_matrices<4, false>, dim3(1), dim3(32), 0, nullptr, device_rows.get(),
                                         device_order.get(), stride, output.get()));
        const emu::BankCounts counts = emu::shared_bank_conflicts().ldmatrix;
        EXPECT_EQ(4u, counts.phases) << "stride " << stride;
        EXPECT_EQ(stride == 1 ? 0u : 4u * 7u, counts.conflicts()) << "stride " << stride;
    }
}

// Thread i copies bytes [Bytes i, Bytes (i + 1)) of an n-float row into
// shared memory, reading only what lies inside the row (zero-filling the
// rest), then the block writes the whole tile out.
template <int Bytes>
__global__ void copy_ragged_row(const float* row, int n, float* output) {
    constexpr int floats = Bytes / 4;
    LADON_SHARED(uint4, tile, [32]);  // 512 bytes
    auto* tile_floats = reinterpret_cast<float*>(tile);
    const int i = static_cast<int>(threadIdx.x);
    const int first = i * floats;
    const int inside = first >= n ? 0 : (n - first < floats ? n - first : floats);
    tc::cp_async<Bytes>(tile_floats + first, inside > 0 ? row + first : row, inside * 4);
    tc::cp_async_commit();
    tc::cp_async_wait<0>();
    __syncthreads();
    for (int j = 0; j < floats; ++j) output[first + j] = tile_floats[(first + j + floats) % (32 * floats)];
}

template <int Bytes>
void expect_ragged_copy(int n) {
    constexpr int floats = Bytes / 4;
    std::vector<float> row(static_cast<std::size_t>(n));
    std::iota(row.begin(), row.end(), 1.0f);
    DeviceBuffer<float> device_row(row), output(32 * floats);
    ASSERT_CUDA_SUCCESS(cuda::launch(copy_ragged_row<Bytes>, dim3(1), dim3(32), 0, nullptr, device_row.get(), n,
                                     output.get()));
    const std::vector<float> tile = output.download();
    for (int j = 0; j < 32 * floats; ++j) {
        const int source = (j + floats) % (32 * floats);
        ASSERT_EQ(source < n ? row[source] : 0.0f, tile[j]) << Bytes << "-byte copies, n " << n << ", float " << j;
    }
}

TEST(EmuCpAsync, RaggedRowsAreCopiedAndZeroFilled) {
    expect_ragged_copy<4>(29);
    expect_ragged_copy<8>(45);
    expect_ragged_copy<16>(97);
    expect_ragged_copy<16>(1);
}

// Sums `tiles` tiles of 128 floats through a `stages`-deep pipeline: each
// thread copies 16 bytes of every tile and reads its neighbour's. With
// `waits_enough` false the wait leaves one group too many in flight.
template <bool waits_enough>
__global__ void pipelined_sum(const float* tiles, int count, float* output) {
    constexpr int stages = 3;
    LADON_SHARED(uint4, buffers, [stages][32]);
    const int i = static_cast<int>(threadIdx.x);
    const auto issue = [&](int tile) {
        tc::cp_async<16>(&buffers[tile % stages][i], tiles + tile * 128 + i * 4);
    };
    for (int tile = 0; tile < stages - 1; ++tile) {
        if (tile < count) issue(tile);
        tc::cp_async_commit();
    }
    float sum = 0.0f;
    for (int tile = 0; tile < count; ++tile) {
        if constexpr (waits_enough)
            tc::cp_async_wait<stages - 2>();
        else
            tc::cp_async_wait<stages - 1>();
        __syncthreads();
        sum += reinterpret_cast<const float*>(buffers[tile % stages])[(i * 4 + 4) % 128];
        if (tile + stages - 1 < count) issue(tile + stages - 1);
        tc::cp_async_commit();
    }
    tc::cp_async_wait<0>();
    output[i] = sum;
}

TEST(EmuCpAsync, ThreeStagePipelineSumsEveryTile) {
    constexpr int count = 7;
    std::vector<float> tiles(count * 128);
    std::iota(tiles.begin(), tiles.end(), 0.0f);
    DeviceBuffer<float> device_tiles(tiles), output(32);
    emu::reset_shared_bank_conflicts();
    ASSERT_CUDA_SUCCESS(
        cuda::launch(pipelined_sum<true>, dim3(1), dim3(32), 0, nullptr, device_tiles.get(), count, output.get()));
    const std::vector<float> sums = output.download();
    for (int i = 0; i < 32; ++i) {
        float expected = 0.0f;
        for (int tile = 0; tile < count; ++tile) expected += tiles[tile * 128 + (i * 4 + 4) % 128];
        EXPECT_EQ(expected, sums[i]) << "thread " << i;
    }
    // 16-byte copies of consecutive chunks: 4 phases of 8 lanes per tile, no conflict.
    const emu::BankCounts counts = emu::shared_bank_conflicts().cp_async;
    EXPECT_EQ(4u * count, counts.phases);
    EXPECT_EQ(0u, counts.conflicts());
}

// The classic pipeline bug: one wait_group too lenient. The tile is read
// before its copy completes, and the poison shows as NaN.
// Under ASan the destination is also poisoned for ASan until the wait: the
// read is a report there.
TEST(EmuCpAsync, ReadingBeforeTheWaitSeesThePoison) {
    constexpr int count = 4;
    std::vector<float> tiles(count * 128, 1.0f);
    DeviceBuffer<float> device_tiles(tiles), output(32);
    const auto run = [&] {
        return cuda::launch(pipelined_sum<false>, dim3(1), dim3(32), 0, nullptr, device_tiles.get(), count,
                            output.get());
    };
#if defined(__SANITIZE_ADDRESS__)
    GTEST_FLAG_SET(death_test_style, "threadsafe");  // the emulator's workers are threads
    EXPECT_DEATH(run(), "use-after-poison");
#else
    ASSERT_CUDA_SUCCESS(run());
    // A thread whose own (too lenient) wait completed its copy before its
    // neighbour read it gives that neighbour real data, as a GPU might: how
    // many sums are NaN depends on the fiber order (31 forwards, 1 in
    // reverse), but never none. The race build reports it either way.
    const std::vector<float> sums = output.download();
    EXPECT_GE(std::count_if(sums.begin(), sums.end(), [](float sum) { return std::isnan(sum); }), 1);
#endif
}

}  // namespace
}  // namespace ladon::emu_test
