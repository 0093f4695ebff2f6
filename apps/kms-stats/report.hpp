// Formatting shared by the modes, and the Prometheus textfile writer.
#pragma once

#include <string>

#include "metrics.hpp"

namespace kms::stats {

double round_to(double v, int digits);
/// "2.00 s", "150 ms"
std::string seconds_text(double s);
/// "1.52 Mbit/s", "64.0 kbit/s"
std::string bitrate_text(double bps);

/// Writes samples in the Prometheus text exposition format (node_exporter's textfile
/// collector) to path atomically: a temporary file in the same folder, then rename(2), so the
/// collector never reads half a file. Throws Error(Io) naming the path.
void write_prometheus(const std::string& path, const Samples& samples);

/// The exposition itself, for tests and stdout.
std::string prometheus_text(const Samples& samples);

}  // namespace kms::stats
