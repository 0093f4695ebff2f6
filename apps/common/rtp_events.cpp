#include "common/rtp_events.hpp"

#include <algorithm>

namespace kms::app {

unsigned long long emit_inbound_rtp(EventWriter& events, const Source& source, bool final) {
    unsigned long long lost = 0;
    for (const RtpStreamStats& st : source.rtp_stats()) {
        lost += st.packets_lost;
        if (!st.packets_received) continue;  // an rtp:// port nothing has come to yet
        Json j{{"kind", st.kind},
               {"ssrc", st.ssrc},
               {"packetsReceived", st.packets_received},
               {"bytesReceived", st.bytes_received},
               {"packetsLost", st.packets_lost},
               {"framesReceived", st.frames_received}};
        if (st.jitter_s >= 0) j["jitter"] = st.jitter_s;
        if (final) j["final"] = true;
        events.emit("inbound-rtp", j);
    }
    return lost;
}

void add_stats_interval_option(CLI::App& app, double& seconds) {
    app.add_option("--stats-interval", seconds,
                   "rtsp://, rtp://: W3C inbound-rtp events of each stream every SECONDS "
                   "(0: none)")
        ->check(seconds_check(true))
        ->option_text("SECONDS");
}

unsigned stats_period_ms(double seconds) {
    return std::max(1u, static_cast<unsigned>(seconds * 1000));
}

}  // namespace kms::app
