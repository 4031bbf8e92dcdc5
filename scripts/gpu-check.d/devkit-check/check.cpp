// Uses each library of ladon's GPU development kit once and prints one line
// per library; exits 1 naming the first that gives a wrong answer.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <toml++/toml.h>

namespace {

int failures = 0;

void report(const char* library, bool ok, const std::string& detail) {
    std::printf("%-14s %s  %s\n", library, ok ? "ok" : "FAILED", detail.c_str());
    if (!ok) ++failures;
}

TEST(DevkitCheck, GoogleTestRuns) { EXPECT_EQ(2 + 2, 4); }

void spin(benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(state.iterations());
}

}  // namespace

int main(int argc, char** argv) {
    report("fmt", fmt::format("{:.2f}", 1.5) == "1.50", fmt::format("{:.2f}", 1.5));
    auto table = toml::parse("[model]\nwidth = 32\n");
    report("toml++", table["model"]["width"].value_or(0) == 32, "width = 32");
    CLI::App app{"devkit_check"};
    int steps = 0;
    app.add_option("--steps", steps);
    const char* args[] = {"devkit_check", "--steps", "7"};
    app.parse(3, const_cast<char**>(args));
    report("CLI11", steps == 7, fmt::format("--steps {}", steps));
    auto json = nlohmann::json::parse(R"({"loss": 0.25})");
    report("nlohmann-json", json["loss"].get<double>() == 0.25, json.dump());
    float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, c[4] = {};
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);
    report("OpenBLAS", c[0] == 19 && c[3] == 50, fmt::format("[[{} {}] [{} {}]]", c[0], c[1], c[2], c[3]));
    const unsigned char bytes[] = "ladon";
    const auto crc = crc32(0L, bytes, 5);
    report("zlib", crc == 0x1ecba5fcu, fmt::format("crc32 {:08x}, zlib {}", crc, zlibVersion()));
    testing::InitGoogleTest(&argc, argv);
    report("GoogleTest", RUN_ALL_TESTS() == 0, "1 test");
    benchmark::RegisterBenchmark("spin", spin)->Iterations(10);
    benchmark::Initialize(&argc, argv);
    report("Benchmark", benchmark::RunSpecifiedBenchmarks() == 1, "1 benchmark");
    std::printf("devkit check: %s\n", failures == 0 ? "every library works" : "a library failed");
    return failures == 0 ? 0 : 1;
}
