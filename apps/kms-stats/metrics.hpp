// What every mode of kms-stats hands on: named figures for --assert, and Prometheus samples.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace kms::stats {

/// What a figure measures, so that an assertion's unit can be checked against it.
enum class Dim {
    Ratio,    ///< 0..1; written 1% or 0.01
    Seconds,  ///< written 150ms, 2s or 0.15
    Bitrate,  ///< bits per second; written 500kbps, 2Mbps or 500000
    Fps,      ///< frames per second; written 25 or 25fps
    Count,    ///< a plain number (packets, pixels, gaps)
};

/// A named figure that --assert can test: "loss", "rtt.p95", "video.fps".
struct Metric {
    std::string name;
    double value = 0;
    Dim dim = Dim::Count;
};
using Metrics = std::vector<Metric>;

/// One line of a Prometheus text exposition; samples of one name share its HELP and TYPE.
struct Sample {
    std::string name;  ///< kms_inbound_rtp_packets_lost_total
    std::string type;  ///< counter or gauge
    std::string help;
    std::vector<std::pair<std::string, std::string>> labels;
    double value = 0;
};
using Samples = std::vector<Sample>;

}  // namespace kms::stats
