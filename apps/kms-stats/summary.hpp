// Summarise: the JSON-lines event stream of a kms tool read back into per-track figures,
// round-trip times and the set-up timing, and the time series that plot draws.
#pragma once

#include <algorithm>
#include <cstdio>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kms/events.hpp"
#include "metrics.hpp"

namespace kms::stats {

struct Point {
    double t = 0;  ///< seconds since the first event
    double v = 0;
};
using Series = std::vector<Point>;

struct RttSummary {
    size_t count = 0;
    double min = 0, mean = 0, p50 = 0, p95 = 0, max = 0;  ///< seconds; p50 is the median
    Series series;                                        ///< milliseconds over time, for plot
};

/// One inbound-rtp or outbound-rtp stream (by SSRC), from its successive stats events.
struct RtpTrack {
    bool inbound = true;
    std::string kind, codec, mid;
    unsigned long long ssrc = 0;
    size_t samples = 0;
    double first_t = 0, last_t = 0;  ///< seconds
    unsigned long long packets = 0;  ///< received or sent, the last count
    /// Inbound: of packets, the retransmissions (W3C retransmittedPacketsReceived). Loss ratios
    /// leave them out: packetsLost counts the stream's own gaps, before any repair.
    unsigned long long retransmitted = 0;
    unsigned long long original() const { return packets - std::min(packets, retransmitted); }
    long long lost = 0;  ///< inbound: packetsLost, the last count (0 when absent)
    bool lost_reported = false;
    unsigned long long bytes = 0;
    unsigned long long frames = 0;  ///< framesDecoded / framesSent
    std::optional<double> bitrate;  ///< bits per second between the first and last event
    std::optional<double> fps;
    double jitter_mean = 0, jitter_max = 0;  ///< seconds
    std::optional<double> jitter_last;       ///< seconds: the newest report, for --follow
    /// Seconds: the newest roundTripTime of the remote-inbound-rtp reports about this stream
    /// (an outbound one), for --follow.
    std::optional<double> rtt_last;
    /// Outbound: the round-trip times the peer's reports about this stream gave (no series).
    RttSummary rtt;
    Series bitrate_series, fps_series, loss_series;
};

struct Summary {
    std::string input;
    size_t events = 0;
    double duration = 0;  ///< seconds from the first event to the last
    std::vector<RtpTrack> tracks;
    RttSummary rtt;
    Json phases;       ///< the timing event's phases (ms), or null
    Json since_start;  ///< its sinceProcessStart (ms), or null
    /// The stream's last line was cut short (no end of line, not an event) and left out: its
    /// writer was killed mid-line. What came before stands.
    bool cut_last_line = false;
};

/// Takes an event stream a line at a time, for --follow.
class Summariser {
  public:
    explicit Summariser(const std::string& name);
    ~Summariser();
    Summariser(const Summariser&) = delete;
    Summariser& operator=(const Summariser&) = delete;

    /// One line: one JSON object; a blank line is skipped. Throws Error(BadInput) naming the
    /// line that is not a JSON object with a type and a timestamp.
    void add_line(const std::string& line);
    /// The last line, which has no end of line: as add_line(), but one that is not an event
    /// is left out (Summary::cut_last_line), not an error.
    void add_last_line(const std::string& line);
    /// The summary of the lines so far.
    Summary result() const;
    /// One line for a terminal: the newest interval of each received stream and the RTT.
    std::string status() const;
    /// The tool that wrote the stream has said its last words (kms-call's summary, kms-record's
    /// stopped).
    bool ended() const;
    /// It has said it is stopping (kms-call's stopping), or ended.
    bool stopping() const;

  private:
    struct State;
    std::unique_ptr<State> st_;
};

/// Every line of in, as Summariser takes them.
Summary summarise(std::istream& in, const std::string& name);

Json summary_json(const Summary& s);
void print_summary(std::FILE* out, const Summary& s);
Metrics summary_metrics(const Summary& s);
Samples summary_samples(const Summary& s);

/// The SVG of plot: bitrate, frame rate, loss and RTT over time, one panel each.
std::string plot_svg(const Summary& s);

}  // namespace kms::stats
