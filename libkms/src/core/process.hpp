// Process clock helpers. Private to libkms.
#pragma once

namespace kms {

/// Milliseconds since this process started (from /proc/self/stat, 10 ms resolution), so that
/// timings include dynamic loading and start-up before main().
double process_uptime_ms();

}  // namespace kms
