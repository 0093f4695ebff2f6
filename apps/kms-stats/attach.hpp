// kms-stats --attach PATH: reads the control socket of a running kms-call or kms-record
// (--control PATH), once or every --interval: the shell's getStats.
#pragma once

#include <string>

#include "common/tool.hpp"

namespace kms::stats {

/// Prints each snapshot (text, or one JSON line each with --json). Returns the exit status.
int run_attach(app::Tool& tool, const std::string& path, double interval_s);

}  // namespace kms::stats
