// The W3C inbound-rtp events of a camera's RTP streams (rtsp://, rtp://), for the tools whose
// Source may be one (kms-record, kms-filter): kms-stats summarises them as it does a call's, and
// --control snapshots carry the newest.
#pragma once

#include "common/tool.hpp"
#include "kms/events.hpp"
#include "kms/source.hpp"

namespace kms::app {

/// Emits an inbound-rtp event for each stream that has had a packet (final: the last report).
/// Returns the packets lost over all streams.
unsigned long long emit_inbound_rtp(EventWriter& events, const Source& source, bool final);

/// Adds --stats-interval SECONDS (default as given; 0: none) to app's options.
void add_stats_interval_option(CLI::App& app, double& seconds);

/// The timer period of --stats-interval: 1 ms at least.
unsigned stats_period_ms(double seconds);

}  // namespace kms::app
