#include "summary.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "kms/error.hpp"
#include "report.hpp"

namespace kms::stats {

namespace {

double num(const Json& j, const char* key, double fallback = 0) {
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

bool has_num(const Json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number();
}

std::string str(const Json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// What the track accumulates while its events are read.
struct Acc {
    RtpTrack track;
    double jitter_sum = 0;
    unsigned jitter_n = 0;  // reports that carried a jitter (not every event does)
    double prev_t = 0, prev_bytes = 0, prev_frames = 0, prev_packets = 0, prev_lost = 0;
    // What the counters grew by, between the first event and the last. Only growth counts:
    // GStreamer 1.22's get-stats mixes the SSRCs of a bundle up at times, and a counter that
    // steps back is another stream's value, not a negative bitrate.
    double grown_bytes = 0, grown_frames = 0;
};

void add_sample(Acc& a, const Json& e, double t) {
    RtpTrack& r = a.track;
    const double bytes = num(e, r.inbound ? "bytesReceived" : "bytesSent");
    const double packets = num(e, r.inbound ? "packetsReceived" : "packetsSent");
    // A call decodes what it receives; a recording keeps it encoded and counts framesReceived.
    const char* frames_key = !r.inbound                     ? "framesSent"
                             : has_num(e, "framesDecoded")  ? "framesDecoded"
                             : has_num(e, "framesReceived") ? "framesReceived"
                                                            : "framesDecoded";
    const double frames = num(e, frames_key);
    const double lost = std::max(0.0, num(e, "packetsLost"));
    // Loss is against the stream's own packets: retransmissions are counted in packetsReceived
    // but repair gaps that packetsLost still counts.
    const double repaired = r.inbound ? num(e, "retransmittedPacketsReceived") : 0;
    const double original = std::max(0.0, packets - repaired);
    if (r.samples == 0) {
        r.first_t = t;
    } else if (t > a.prev_t) {
        // Per interval, for the plot: what changed since the previous event of the track.
        const double dt = t - a.prev_t;
        const double db = bytes - a.prev_bytes, df = frames - a.prev_frames;
        if (db >= 0) {
            a.grown_bytes += db;
            r.bitrate_series.push_back({t, db * 8 / dt});
        }
        if (df >= 0) a.grown_frames += df;
        if (df >= 0 && has_num(e, frames_key)) r.fps_series.push_back({t, df / dt});
        const double dl = lost - a.prev_lost, dp = original - a.prev_packets;
        if (r.inbound && dl + dp > 0) r.loss_series.push_back({t, std::max(0.0, dl) / (dl + dp)});
    }
    ++r.samples;
    r.last_t = t;
    r.packets = static_cast<unsigned long long>(packets);
    r.retransmitted = static_cast<unsigned long long>(repaired);
    r.bytes = static_cast<unsigned long long>(bytes);
    r.frames = static_cast<unsigned long long>(frames);
    if (has_num(e, "packetsLost")) {
        r.lost = static_cast<long long>(lost);
        r.lost_reported = true;
    }
    if (has_num(e, "jitter")) {
        const double j = num(e, "jitter");
        a.jitter_sum += j;
        ++a.jitter_n;
        r.jitter_max = std::max(r.jitter_max, j);
        r.jitter_mean = a.jitter_sum / a.jitter_n;
        r.jitter_last = j;
    }
    if (r.mid.empty()) r.mid = str(e, "mid");
    a.prev_t = t;
    a.prev_bytes = bytes;
    a.prev_frames = frames;
    a.prev_packets = original;
    a.prev_lost = lost;
    if (r.last_t > r.first_t) {
        const double span = r.last_t - r.first_t;
        r.bitrate = a.grown_bytes * 8 / span;
        if (has_num(e, frames_key) && r.kind == "video") r.fps = a.grown_frames / span;
    }
}

double percentile(std::vector<double> v, double p) {
    // Nearest rank: the smallest value with at least p of the samples at or below it.
    std::sort(v.begin(), v.end());
    const size_t rank = static_cast<size_t>(std::ceil(p * double(v.size())));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// Count, min, mean, median, p95 and max of some round-trip times (seconds); nothing when there are
// none.
void summarise_rtts(RttSummary& out, const std::vector<double>& rtts) {
    if (rtts.empty()) return;
    out.count = rtts.size();
    out.min = *std::min_element(rtts.begin(), rtts.end());
    out.max = *std::max_element(rtts.begin(), rtts.end());
    double sum = 0;
    for (double r : rtts) sum += r;
    out.mean = sum / double(rtts.size());
    out.p50 = percentile(rtts, 0.50);
    out.p95 = percentile(rtts, 0.95);
}

}  // namespace

struct Summariser::State {
    Summary s;
    std::map<std::string, Acc> accs;  // by direction and SSRC
    std::vector<std::string> order;
    std::map<std::string, std::string> codec_by_mid, codec_by_kind;
    std::map<unsigned long long, double> last_rtt;    // by SSRC: a report repeats until the next
    std::map<unsigned long long, double> rtt_counts;  // by SSRC: its roundTripTimeMeasurements
    std::map<unsigned long long, std::vector<double>> rtts_by_ssrc;
    std::vector<double> rtts;
    double t0 = -1, last = 0;
    size_t lineno = 0;
    bool ended = false, stopping = false;
};

Summariser::Summariser(const std::string& name) : st_(std::make_unique<State>()) {
    st_->s.input = name;
    st_->s.phases = nullptr;
    st_->s.since_start = nullptr;
}

Summariser::~Summariser() = default;

bool Summariser::ended() const {
    return st_->ended;
}

void Summariser::add_last_line(const std::string& line) {
    try {
        add_line(line);
    } catch (const Error& e) {
        if (e.code() != ErrorCode::BadInput) throw;
        st_->s.cut_last_line = true;
    }
}

bool Summariser::stopping() const {
    return st_->stopping || st_->ended;
}

void Summariser::add_line(const std::string& line) {
    State& z = *st_;
    Summary& s = z.s;
    ++z.lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) return;
    Json e = Json::parse(line, nullptr, false);
    if (e.is_discarded() || !e.is_object() || !e.contains("type") || !e["type"].is_string() ||
        !has_num(e, "timestamp"))
        throw Error(ErrorCode::BadInput,
                    s.input + " line " + std::to_string(z.lineno) +
                        ": not a kms event (a JSON object with type and timestamp); is it "
                        "the output of --events?");
    ++s.events;
    const double ms = num(e, "timestamp");
    if (z.t0 < 0) z.t0 = ms;
    const double t = (ms - z.t0) / 1000;
    z.last = std::max(z.last, t);
    const std::string type = e["type"].get<std::string>();
    if (type == "track") {
        std::string codec = str(e, "codec");
        std::string direction = str(e, "direction");
        // kms-record's track: what it receives ("from", a media type such as video/x-h264).
        if (codec.empty() && !str(e, "from").empty()) {
            const std::string from = str(e, "from");
            codec = from.substr(from.find('/') + 1);
            if (codec.rfind("x-", 0) == 0) codec = codec.substr(2);
            if (direction.empty()) direction = "in";
        }
        if (!str(e, "mid").empty()) z.codec_by_mid[direction + str(e, "mid")] = codec;
        z.codec_by_kind[direction + str(e, "kind")] = codec;
    } else if (type == "inbound-rtp" || type == "outbound-rtp") {
        const bool inbound = type == "inbound-rtp";
        const std::string key =
            type + ":" + std::to_string(static_cast<unsigned long long>(num(e, "ssrc")));
        auto [it, fresh] = z.accs.try_emplace(key);
        if (fresh) {
            z.order.push_back(key);
            it->second.track.inbound = inbound;
            it->second.track.kind = str(e, "kind");
            it->second.track.ssrc = static_cast<unsigned long long>(num(e, "ssrc"));
        }
        add_sample(it->second, e, t);
    } else if (type == "remote-inbound-rtp" && has_num(e, "roundTripTime")) {
        const auto ssrc = static_cast<unsigned long long>(num(e, "ssrc"));
        const double rtt = num(e, "roundTripTime");
        // A new report: kms-call counts them (W3C roundTripTimeMeasurements); from other
        // sources, a value unlike the last.
        auto it = z.last_rtt.find(ssrc);
        bool fresh = it == z.last_rtt.end() || it->second != rtt;
        if (has_num(e, "roundTripTimeMeasurements")) {
            const double n = num(e, "roundTripTimeMeasurements");
            auto& seen = z.rtt_counts[ssrc];
            fresh = n != seen;
            seen = n;
        }
        if (rtt > 0 && fresh) {
            z.rtts.push_back(rtt);
            z.rtts_by_ssrc[ssrc].push_back(rtt);
            s.rtt.series.push_back({t, rtt * 1000});
        }
        z.last_rtt[ssrc] = rtt;
    } else if (type == "candidate-pair" && has_num(e, "currentRoundTripTime")) {
        const double rtt = num(e, "currentRoundTripTime");
        if (rtt > 0) {
            z.rtts.push_back(rtt);
            s.rtt.series.push_back({t, rtt * 1000});
        }
    } else if (type == "timing") {
        if (e.contains("phases")) s.phases = e["phases"];
        if (e.contains("sinceProcessStart")) s.since_start = e["sinceProcessStart"];
    } else if (type == "stopped" || type == "summary") {
        // The last words of kms-record (stopped) and kms-call (stopping, then summary).
        z.ended = true;
    } else if (type == "stopping") {
        z.stopping = true;
    }
}

Summary Summariser::result() const {
    const State& z = *st_;
    Summary s = z.s;
    s.duration = z.last;
    for (const auto& key : z.order) {
        RtpTrack r = z.accs.at(key).track;
        const std::string dir = r.inbound ? "in" : "out";
        auto c = z.codec_by_mid.find(dir + r.mid);
        auto k = z.codec_by_kind.find(dir + r.kind);
        if (c != z.codec_by_mid.end())
            r.codec = c->second;
        else if (k != z.codec_by_kind.end())
            r.codec = k->second;
        auto rtt = z.last_rtt.find(r.ssrc);
        if (!r.inbound && rtt != z.last_rtt.end() && rtt->second > 0) r.rtt_last = rtt->second;
        if (auto all = z.rtts_by_ssrc.find(r.ssrc); !r.inbound && all != z.rtts_by_ssrc.end())
            summarise_rtts(r.rtt, all->second);
        s.tracks.push_back(std::move(r));
    }
    std::stable_sort(s.tracks.begin(), s.tracks.end(), [](const RtpTrack& a, const RtpTrack& b) {
        return a.inbound != b.inbound ? a.inbound : a.kind > b.kind;
    });
    summarise_rtts(s.rtt, z.rtts);
    return s;
}

std::string Summariser::status() const {
    // The newest interval of each received stream: what a person watching wants to see.
    const State& z = *st_;
    char buf[256];
    std::string line;
    std::snprintf(buf, sizeof buf, "%5.1f s", z.last);
    line = buf;
    for (const auto& key : z.order) {
        const RtpTrack& r = z.accs.at(key).track;
        if (!r.inbound) continue;
        const double bps = r.bitrate_series.empty() ? 0 : r.bitrate_series.back().v;
        std::snprintf(buf, sizeof buf, "  %s %.0f kbit/s", r.kind.c_str(), bps / 1000);
        line += buf;
        if (r.kind == "video" && !r.fps_series.empty()) {
            std::snprintf(buf, sizeof buf, " %.0f fps", r.fps_series.back().v);
            line += buf;
        }
        if (r.lost_reported) {
            const double total = double(r.lost) + double(r.original());
            std::snprintf(buf, sizeof buf, " loss %.1f%%",
                          total > 0 ? 100 * double(r.lost) / total : 0.0);
            line += buf;
        }
    }
    if (!z.s.rtt.series.empty()) {
        std::snprintf(buf, sizeof buf, "  rtt %.1f ms", z.s.rtt.series.back().v);
        line += buf;
    }
    return line;
}

Summary summarise(std::istream& in, const std::string& name) {
    Summariser s(name);
    std::string line;
    while (std::getline(in, line)) {
        if (in.eof())  // no end of line after it: the last, maybe cut short
            s.add_last_line(line);
        else
            s.add_line(line);
    }
    return s.result();
}

namespace {

double loss_ratio(long long lost, unsigned long long received) {
    const double total = double(lost) + double(received);
    return total > 0 ? double(lost) / total : 0;
}

Json opt(const std::optional<double>& v, int digits) {
    return v ? Json(round_to(*v, digits)) : Json(nullptr);
}

// Per kind, the inbound tracks added up: what --assert and Prometheus read.
struct KindTotals {
    unsigned long long received = 0, bytes = 0, frames = 0;
    unsigned long long original = 0;  // received less retransmissions: what loss is against
    long long lost = 0;
    double bitrate = 0, jitter_mean = 0, jitter_max = 0;
    std::optional<double> fps;
    bool lost_reported = false;
};

void add_track(KindTotals& k, const RtpTrack& t) {
    k.received += t.packets;
    k.original += t.original();
    k.bytes += t.bytes;
    k.frames += t.frames;
    k.lost += t.lost;
    k.lost_reported = k.lost_reported || t.lost_reported;
    k.bitrate += t.bitrate.value_or(0);
    k.jitter_mean = std::max(k.jitter_mean, t.jitter_mean);
    k.jitter_max = std::max(k.jitter_max, t.jitter_max);
    if (t.fps) k.fps = std::max(k.fps.value_or(0), *t.fps);
}

std::map<std::string, KindTotals> totals(const Summary& s, bool inbound) {
    std::map<std::string, KindTotals> by;
    for (const auto& t : s.tracks)
        if (t.inbound == inbound) add_track(by[t.kind], t);
    return by;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

// Prometheus series: one per kind, or, where a kind has several streams (simulcast, two
// cameras), one per stream, told apart by its mid (its SSRC when it has none). Adding streams
// up made a mixture: packets summed, jitter the worse one's, frame rate the faster one's.
std::map<Labels, KindTotals> series(const Summary& s, bool inbound) {
    std::map<std::string, unsigned> streams;
    for (const auto& t : s.tracks)
        if (t.inbound == inbound) ++streams[t.kind];
    std::map<Labels, KindTotals> by;
    for (const auto& t : s.tracks) {
        if (t.inbound != inbound) continue;
        Labels l{{"kind", t.kind}};
        if (streams[t.kind] > 1)
            l.push_back(t.mid.empty()
                            ? std::pair<std::string, std::string>{"ssrc", std::to_string(t.ssrc)}
                            : std::pair<std::string, std::string>{"mid", t.mid});
        add_track(by[l], t);
    }
    return by;
}

}  // namespace

namespace {

Json rtt_json(const RttSummary& r) {
    if (!r.count) return nullptr;
    return Json{{"samples", r.count},          {"min", round_to(r.min, 6)},
                {"mean", round_to(r.mean, 6)}, {"p50", round_to(r.p50, 6)},
                {"p95", round_to(r.p95, 6)},   {"max", round_to(r.max, 6)}};
}

std::string rtt_text(const RttSummary& r) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "min %.1f ms, mean %.1f ms, median %.1f ms, p95 %.1f ms, max %.1f ms",
                  r.min * 1000, r.mean * 1000, r.p50 * 1000, r.p95 * 1000, r.max * 1000);
    return buf;
}

}  // namespace

Json summary_json(const Summary& s) {
    Json doc{{"input", s.input}, {"events", s.events}, {"duration", round_to(s.duration, 3)}};
    Json in = Json::array(), out = Json::array();
    for (const auto& t : s.tracks) {
        Json j{{"kind", t.kind}, {"codec", t.codec}, {"mid", t.mid}, {"ssrc", t.ssrc}};
        j["samples"] = t.samples;
        j["bitrate"] = t.bitrate ? Json(std::llround(*t.bitrate)) : Json(nullptr);
        j["framesPerSecond"] = opt(t.fps, 2);
        if (t.inbound) {
            j["packetsReceived"] = t.packets;
            j["packetsLost"] = t.lost_reported ? Json(t.lost) : Json(nullptr);
            j["lossRatio"] = t.lost_reported ? Json(round_to(loss_ratio(t.lost, t.original()), 5))
                                             : Json(nullptr);
            j["bytesReceived"] = t.bytes;
            j["framesDecoded"] = t.frames;
            j["jitter"] =
                Json{{"mean", round_to(t.jitter_mean, 6)}, {"max", round_to(t.jitter_max, 6)}};
            in.push_back(j);
        } else {
            j["packetsSent"] = t.packets;
            j["bytesSent"] = t.bytes;
            j["framesSent"] = t.frames;
            j["roundTripTime"] = rtt_json(t.rtt);
            out.push_back(j);
        }
    }
    doc["inbound"] = in;
    doc["outbound"] = out;
    doc["roundTripTime"] = rtt_json(s.rtt);
    doc["timing"] = Json{{"phases", s.phases}, {"sinceProcessStart", s.since_start}};
    return doc;
}

void print_summary(std::FILE* out, const Summary& s) {
    std::fprintf(out, "%s: %zu events over %s\n", s.input.c_str(), s.events,
                 seconds_text(s.duration).c_str());
    for (int inbound = 1; inbound >= 0; --inbound) {
        bool header = false;
        for (const auto& t : s.tracks) {
            if (t.inbound != bool(inbound)) continue;
            if (!header) std::fprintf(out, "%s\n", inbound ? "received" : "sent");
            header = true;
            std::fprintf(out, "  %s %s (mid %s, ssrc %llu)\n", t.kind.c_str(),
                         t.codec.empty() ? "?" : t.codec.c_str(),
                         t.mid.empty() ? "-" : t.mid.c_str(), t.ssrc);
            std::fprintf(out, "    bitrate     %s\n",
                         t.bitrate ? bitrate_text(*t.bitrate).c_str() : "n/a (one event)");
            if (t.fps) std::fprintf(out, "    frame rate  %.2f fps\n", *t.fps);
            if (inbound) {
                std::fprintf(out, "    packets     %llu received, ", t.packets);
                if (t.lost_reported)
                    std::fprintf(out, "%lld lost (%.2f%%)\n", t.lost,
                                 100 * loss_ratio(t.lost, t.original()));
                else
                    std::fprintf(out, "loss not reported\n");
                std::fprintf(out, "    jitter      %.1f ms mean, %.1f ms max\n",
                             t.jitter_mean * 1000, t.jitter_max * 1000);
            } else {
                std::fprintf(out, "    packets     %llu sent, %llu bytes\n", t.packets, t.bytes);
                if (t.rtt.count)
                    std::fprintf(out, "    rtt         %s (%zu reports)\n", rtt_text(t.rtt).c_str(),
                                 t.rtt.count);
            }
        }
    }
    if (s.rtt.count)
        std::fprintf(out, "round-trip time (%zu reports): %s\n", s.rtt.count,
                     rtt_text(s.rtt).c_str());
    else
        std::fprintf(out, "round-trip time: no reports\n");
    if (s.phases.is_object()) {
        std::fprintf(out, "set-up (ms):");
        for (auto it = s.phases.begin(); it != s.phases.end(); ++it)
            if (it.value().is_number())
                std::fprintf(out, " %s %.1f", it.key().c_str(), it.value().get<double>());
        std::fprintf(out, "\n");
        if (s.since_start.is_object() && has_num(s.since_start, "firstFrame"))
            std::fprintf(out, "first frame %.1f ms after the process started\n",
                         num(s.since_start, "firstFrame"));
    }
}

Metrics summary_metrics(const Summary& s) {
    Metrics m;
    m.push_back({"duration", s.duration, Dim::Seconds});
    const auto in = totals(s, true);
    unsigned long long received = 0;
    long long lost = 0;
    double bitrate = 0, jitter = 0;
    bool any_loss = false;
    for (const auto& [kind, k] : in) {
        received += k.original;
        lost += k.lost;
        bitrate += k.bitrate;
        jitter = std::max(jitter, k.jitter_mean);
        any_loss = any_loss || k.lost_reported;
        m.push_back({kind + ".bitrate", k.bitrate, Dim::Bitrate});
        m.push_back({kind + ".jitter", k.jitter_mean, Dim::Seconds});
        if (k.lost_reported) {
            m.push_back({kind + ".loss", loss_ratio(k.lost, k.original), Dim::Ratio});
            m.push_back({kind + ".packetsLost", double(k.lost), Dim::Count});
        }
        if (k.fps) m.push_back({kind + ".fps", *k.fps, Dim::Fps});
    }
    if (!in.empty()) {
        m.push_back({"bitrate", bitrate, Dim::Bitrate});
        m.push_back({"jitter", jitter, Dim::Seconds});
    }
    // A loss nobody reported is not a loss of 0: an assertion on it says "not measured".
    if (any_loss) {
        m.push_back({"loss", loss_ratio(lost, received), Dim::Ratio});
        m.push_back({"packetsLost", double(lost), Dim::Count});
    }
    double sent = 0;
    bool any_out = false;
    for (const auto& [kind, k] : totals(s, false)) {
        any_out = true;
        sent += k.bitrate;
        if (k.fps) m.push_back({"sent." + kind + ".fps", *k.fps, Dim::Fps});
    }
    if (any_out) m.push_back({"sent.bitrate", sent, Dim::Bitrate});
    auto rtt = [&m](const std::string& name, const RttSummary& r) {
        if (!r.count) return;
        m.push_back({name, r.mean, Dim::Seconds});
        m.push_back({name + ".min", r.min, Dim::Seconds});
        m.push_back({name + ".mean", r.mean, Dim::Seconds});
        m.push_back({name + ".p50", r.p50, Dim::Seconds});
        m.push_back({name + ".p95", r.p95, Dim::Seconds});
        m.push_back({name + ".max", r.max, Dim::Seconds});
    };
    rtt("rtt", s.rtt);
    // Per kind: the first sent stream of that kind that the peer reported on.
    std::set<std::string> rtt_kinds;
    for (const auto& t : s.tracks)
        if (!t.inbound && t.rtt.count && rtt_kinds.insert(t.kind).second)
            rtt(t.kind + ".rtt", t.rtt);
    if (s.since_start.is_object() && has_num(s.since_start, "firstFrame"))
        m.push_back({"setup", num(s.since_start, "firstFrame") / 1000, Dim::Seconds});
    return m;
}

Samples summary_samples(const Summary& s) {
    Samples out;
    for (const auto& [l, k] : series(s, true)) {
        const std::string& kind = l.front().second;
        out.push_back({"kms_inbound_rtp_packets_received_total", "counter",
                       "RTP packets received (W3C inbound-rtp packetsReceived)", l,
                       double(k.received)});
        if (k.lost_reported)
            out.push_back({"kms_inbound_rtp_packets_lost_total", "counter",
                           "RTP packets lost (W3C inbound-rtp packetsLost)", l, double(k.lost)});
        out.push_back({"kms_inbound_rtp_bytes_received_total", "counter",
                       "RTP payload bytes received (W3C inbound-rtp bytesReceived)", l,
                       double(k.bytes)});
        if (kind == "video")
            out.push_back({"kms_inbound_rtp_frames_decoded_total", "counter",
                           "Video frames decoded (W3C inbound-rtp framesDecoded)", l,
                           double(k.frames)});
        out.push_back({"kms_inbound_rtp_bitrate_bits_per_second", "gauge",
                       "Received bitrate over the events read", l, k.bitrate});
        if (k.fps)
            out.push_back({"kms_inbound_rtp_frames_per_second", "gauge",
                           "Frames decoded per second over the events read", l, *k.fps});
        if (k.lost_reported)
            out.push_back(
                {"kms_inbound_rtp_loss_ratio", "gauge",
                 "packetsLost / (packetsLost + packetsReceived less retransmittedPacketsReceived)",
                 l, loss_ratio(k.lost, k.original)});
        out.push_back({"kms_inbound_rtp_jitter_seconds", "gauge",
                       "Interarrival jitter, mean of the events read (W3C jitter)", l,
                       k.jitter_mean});
    }
    for (const auto& [l, k] : series(s, false)) {
        out.push_back({"kms_outbound_rtp_packets_sent_total", "counter",
                       "RTP packets sent (W3C outbound-rtp packetsSent)", l, double(k.received)});
        out.push_back({"kms_outbound_rtp_bytes_sent_total", "counter",
                       "RTP payload bytes sent (W3C outbound-rtp bytesSent)", l, double(k.bytes)});
    }
    if (s.rtt.count) {
        for (auto [stat, v] : std::vector<std::pair<const char*, double>>{{"min", s.rtt.min},
                                                                          {"mean", s.rtt.mean},
                                                                          {"p50", s.rtt.p50},
                                                                          {"p95", s.rtt.p95},
                                                                          {"max", s.rtt.max}})
            out.push_back({"kms_remote_inbound_rtp_round_trip_time_seconds", "gauge",
                           "Round-trip time from RTCP receiver reports (W3C roundTripTime)",
                           Labels{{"stat", stat}}, v});
    }
    if (s.phases.is_object())
        for (auto it = s.phases.begin(); it != s.phases.end(); ++it)
            if (it.value().is_number())
                out.push_back({"kms_setup_phase_seconds", "gauge",
                               "Call set-up time by phase (the timing event)",
                               Labels{{"phase", it.key()}}, it.value().get<double>() / 1000});
    // A gauge, so not named _total: how many this run read.
    out.push_back(
        {"kms_stats_events_read", "gauge", "Events read by kms-stats", {}, double(s.events)});
    out.push_back({"kms_stats_last_run_timestamp_seconds",
                   "gauge",
                   "When kms-stats wrote this file (Unix time)",
                   {},
                   now_ms() / 1000});
    return out;
}

}  // namespace kms::stats
