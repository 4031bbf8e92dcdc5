// libFuzzer target for run configs: any text either parses or throws
// ladon::Error (never crashes, hangs or reports to a sanitizer), and a config
// that parses prints back as TOML that parses to the same config.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ladon/config.hpp"
#include "ladon/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    ladon::RunConfig config;
    try {
        config = ladon::parse_run_config(text, "fuzz.toml");
    } catch (const ladon::Error&) {
        return 0;
    }
    const std::string printed = ladon::to_toml(config);
    try {
        if (ladon::to_toml(ladon::parse_run_config(printed, "printed.toml")) != printed) std::abort();
    } catch (const ladon::Error&) {
        std::abort();  // what we print, we must read back
    }
    return 0;
}
