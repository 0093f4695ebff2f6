#include <time.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include "core/process.hpp"

namespace kms {

namespace {

// Start time in seconds since boot, read once; -1 when /proc is unavailable.
double start_since_boot() {
    std::ifstream f("/proc/self/stat");
    std::string line;
    if (!std::getline(f, line)) return -1;
    // Field 2 (comm) may hold spaces; fields after the closing ')' are plain. starttime is
    // field 22.
    size_t close = line.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 22 && rest >> field; ++i) {
        if (i == 22) return std::stod(field) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
    return -1;
}

const auto g_loaded = std::chrono::steady_clock::now();

}  // namespace

double process_uptime_ms() {
    static const double start = start_since_boot();
    if (start >= 0) {
        timespec ts{};
        if (clock_gettime(CLOCK_BOOTTIME, &ts) == 0)
            return (static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9 - start) * 1000.0;
    }
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - g_loaded)
        .count();
}

}  // namespace kms
