// kms-stats --attach PATH: reads the control socket of a running kms-call or kms-record
// (--control PATH), once or every --interval: the shell's getStats.
#pragma once

#include <string>

#include "common/tool.hpp"
#include "summary.hpp"

namespace kms::stats {

/// Prints each snapshot (text, or one JSON line each with --json). Returns the exit status.
/// With COLLECT (for --assert), the statistics of every snapshot also go into it as events,
/// and, unless --duration says how long, reading stops once every stream's statistics are
/// newer than at the first read (8 reads at most): rates need two of them.
int run_attach(app::Tool& tool, const std::string& path, double interval_s,
               Summariser* collect = nullptr);

}  // namespace kms::stats
