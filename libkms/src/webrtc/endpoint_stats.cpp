// WebRtcEndpoint::Impl: W3C statistics, the loss-based bitrate controller, media flow, timing and
// the summary.
#include "webrtc/endpoint_impl.hpp"

namespace kms {

// The RTP sessions' own counters per SSRC (rtpsource's stats), which kms puts in place of
// webrtcbin 1.22's get-stats figures: that leaves packetsLost out of inbound-rtp (a receiver
// could not see its loss), counts received bytes only as the jitter buffer lets packets go (200
// ms late), and with BUNDLE files one stream's counters under another's SSRC (a video
// outbound-rtp with 0 bytes sent). rtpsource counts payload bytes, as W3C's bytesSent and
// bytesReceived do, as packets enter or leave the session, and loss from sequence numbers
// (expected - received, RFC 3550 A.3).
std::map<guint32, WebRtcEndpoint::Impl::RtpCounts> WebRtcEndpoint::Impl::rtp_counts() {
    std::map<guint32, RtpCounts> out;
    gst::ElementPtr rtpbin(gst_bin_get_by_name(GST_BIN(webrtc), "rtpbin"));
    if (!rtpbin) return out;
    for (guint id = 0; id < tracks.size() + 1; ++id) {  // one session with BUNDLE, else one each
        GObject* session = nullptr;  // the RTPSession itself, which keeps the sources
        g_signal_emit_by_name(rtpbin.get(), "get-internal-session", id, &session);
        if (!session) continue;
        std::unique_ptr<GObject, decltype(&g_object_unref)> owned(session, g_object_unref);
        G_GNUC_BEGIN_IGNORE_DEPRECATIONS
        GValueArray* sources = nullptr;
        g_object_get(session, "sources", &sources, nullptr);
        for (guint i = 0; sources && i < sources->n_values; ++i) {
            GObject* src = static_cast<GObject*>(g_value_get_object(&sources->values[i]));
            GstStructure* raw = nullptr;
            if (src) g_object_get(src, "stats", &raw, nullptr);
            gst::StructurePtr st(raw);
            guint ssrc = 0;
            gboolean internal = FALSE;
            if (!st || !gst_structure_get_uint(st.get(), "ssrc", &ssrc)) continue;
            gst_structure_get_boolean(st.get(), "internal", &internal);
            RtpCounts c;
            c.internal = internal;
            gint lost = 0;
            gst_structure_get_int(st.get(), "packets-lost", &lost);
            c.lost = lost;
            gst_structure_get_uint64(st.get(), "packets-received", &c.packets_received);
            gst_structure_get_uint64(st.get(), "octets-received", &c.octets_received);
            gst_structure_get_uint64(st.get(), "packets-sent", &c.packets_sent);
            gst_structure_get_uint64(st.get(), "octets-sent", &c.octets_sent);
            // The peer's streams count what we asked of them, ours what the peer asked of us.
            const char* dir = internal ? "recv" : "sent";
            gst_structure_get_uint(st.get(), (std::string(dir) + "-nack-count").c_str(), &c.nack);
            gst_structure_get_uint(st.get(), (std::string(dir) + "-pli-count").c_str(), &c.pli);
            gst_structure_get_uint(st.get(), (std::string(dir) + "-fir-count").c_str(), &c.fir);
            KMS_LOG(webrtc, DEBUG, "session %u: SSRC %u%s lost %d", id, ssrc,
                    internal ? " (ours)" : "", lost);
            out[ssrc] = c;
        }
        if (sources) g_value_array_free(sources);
        G_GNUC_END_IGNORE_DEPRECATIONS
    }
    return out;
}

// Counters only grow: a source the session has dropped or reset (after its BYE, at the end of
// the call) keeps the counts it had, where webrtcbin then reports zeros.
void WebRtcEndpoint::Impl::refresh_counts() {
    for (const auto& [ssrc, c] : rtp_counts()) {
        RtpCounts& k = known_counts[ssrc];
        k.internal = c.internal;
        k.lost = c.packets_received >= k.packets_received ? c.lost : k.lost;
        k.packets_received = std::max(k.packets_received, c.packets_received);
        k.octets_received = std::max(k.octets_received, c.octets_received);
        k.packets_sent = std::max(k.packets_sent, c.packets_sent);
        k.octets_sent = std::max(k.octets_sent, c.octets_sent);
        k.nack = std::max(k.nack, c.nack);
        k.pli = std::max(k.pli, c.pli);
        k.fir = std::max(k.fir, c.fir);
    }
}

// W3C's nackCount, pliCount and firCount: in inbound-rtp what this side sent about the stream,
// in outbound-rtp what the peer sent about ours. webrtcbin 1.22 leaves them out.
void WebRtcEndpoint::Impl::add_feedback(Json& j, const RtpCounts& c) {
    j["nackCount"] = c.nack;
    j["pliCount"] = c.pli;
    j["firCount"] = c.fir;
}

// What we counted ourselves on the way into webrtcbin, where it is more than the session says.
// The frames decoded so far, from our own counters: per stream when its m-line is known (t),
// the sum of its kind otherwise.
void WebRtcEndpoint::Impl::own_decoded(Json& j, const Track* t) const {
    const std::string kind = j.value("kind", "");
    if (kind == "video") j["framesDecoded"] = t ? t->n->frames_in.load() : frames_video.load();
    if (kind == "audio") j["audioFramesDecoded"] = t ? t->n->frames_in.load() : frames_audio.load();
}

void WebRtcEndpoint::Impl::own_sent(Json& j, const Track& t) {
    j["packetsSent"] = std::max<unsigned long long>(j.value("packetsSent", 0ULL), t.n->rtp_out);
    j["bytesSent"] = std::max<unsigned long long>(j.value("bytesSent", 0ULL), t.n->payload_out);
}

// RFC 4588 retransmissions come on an SSRC of their own (a=ssrc-group:FID MEDIA RTX), which the
// session counts apart and webrtcbin reports as one more inbound-rtp, of whatever kind its
// codecId says (in 1.22 the bundle's first codec, so often audio). W3C counts them in the media
// stream's inbound-rtp and outbound-rtp (packets and bytes include retransmissions, and
// retransmitted* say how many), as a browser counts what it sends and receives: so here, both
// ways (the peer's groups for what we receive, ours for what we send).
void WebRtcEndpoint::Impl::add_repairs(Json& j, bool inbound) const {
    if (!j.contains("ssrc") || !j["ssrc"].is_number()) return;
    const auto ssrc = j["ssrc"].get<guint32>();
    guint64 packets = 0, bytes = 0;
    bool paired = false;
    for (const auto& [rtx, media] : inbound ? rx_repair : tx_repair) {
        if (media != ssrc) continue;
        paired = true;
        auto it = known_counts.find(rtx);
        if (it == known_counts.end() || it->second.internal == inbound) continue;
        packets += inbound ? it->second.packets_received : it->second.packets_sent;
        bytes += inbound ? it->second.octets_received : it->second.octets_sent;
    }
    if (!paired) return;
    const char* p = inbound ? "packetsReceived" : "packetsSent";
    const char* b = inbound ? "bytesReceived" : "bytesSent";
    j[p] = j.value(p, 0ULL) + packets;
    j[b] = j.value(b, 0ULL) + bytes;
    j[inbound ? "retransmittedPacketsReceived" : "retransmittedPacketsSent"] = packets;
    j[inbound ? "retransmittedBytesReceived" : "retransmittedBytesSent"] = bytes;
}

// The last word on every RTP stream, when the call ends: media goes on for a moment after the
// last periodic statistics (the stop's grace for the peer's BYE), so totals read then would
// fall short of what the peer counted.
void WebRtcEndpoint::Impl::emit_final_stats() {
    if (last_rtp.empty() || !webrtc) return;
    refresh_counts();
    for (auto& [key, entry] : last_rtp) {
        auto& [type, j] = entry;
        auto it = known_counts.find(j["ssrc"].get<guint32>());
        if (it == known_counts.end()) continue;
        const RtpCounts& c = it->second;
        if (type == "inbound-rtp" && !c.internal) {
            // A source silent for 30 s is forgotten there: rtpsession's count, its -1 left out.
            j["packetsLost"] =
                reception.packets_lost(it->first).value_or(std::max<long long>(c.lost, 0));
            j["packetsReceived"] = c.packets_received;
            j["bytesReceived"] = c.octets_received;
            add_feedback(j, c);
            add_repairs(j, true);
            // The frames too: the counters above grew since the last event, and frames that
            // stood still while packets grew read as a frame rate falling to 0 at the end.
            own_decoded(j, track_of_ssrc(j, true));
        } else if (type == "outbound-rtp" && c.internal) {
            j["packetsSent"] = c.packets_sent;
            j["bytesSent"] = c.octets_sent;
            add_feedback(j, c);
            if (const Track* t = track_of_ssrc(j, false)) own_sent(j, *t);
            add_repairs(j, false);
        }
        j["final"] = true;
        events.emit(type, j);
    }
}

void WebRtcEndpoint::Impl::on_stats(GstPromise* p) {
    if (gst_promise_wait(p) != GST_PROMISE_RESULT_REPLIED) return;
    const GstStructure* r = gst_promise_get_reply(p);
    if (!r) return;
    std::map<std::string, Json> by_id;
    std::vector<std::pair<std::string, Json>> out;
    const int n = gst_structure_n_fields(r);
    for (int i = 0; i < n; ++i) {
        const GValue* v = gst_structure_get_value(r, gst_structure_nth_field_name(r, i));
        if (!GST_VALUE_HOLDS_STRUCTURE(v)) continue;
        const GstStructure* s = gst_value_get_structure(v);
        GstWebRTCStatsType type{};
        if (!gst_structure_get_enum(s, "type", GST_TYPE_WEBRTC_STATS_TYPE,
                                    reinterpret_cast<gint*>(&type)))
            continue;
        Json j = stats_to_json(s);
        const std::string tname = enum_nick(GST_TYPE_WEBRTC_STATS_TYPE, type);
        if (j.contains("id")) by_id[j["id"].get<std::string>()] = j;
        out.emplace_back(tname, std::move(j));
    }
    auto kind_of = [&](Json& j) {
        if (j.contains("ssrc")) {
            std::lock_guard lock(ssrc_mutex);
            auto it = ssrc_kind.find(j["ssrc"].get<guint32>());
            if (it != ssrc_kind.end()) {
                j["kind"] = it->second;
                return;
            }
        }
        if (j.contains("kind")) return;
        if (j.contains("codecId") && by_id.count(j["codecId"].get<std::string>())) {
            const Json& codec = by_id[j["codecId"].get<std::string>()];
            std::string mime = codec.value("mimeType", "");
            if (mime.rfind("video", 0) == 0)
                j["kind"] = "video";
            else if (mime.rfind("audio", 0) == 0)
                j["kind"] = "audio";
        }
    };
    long long lost = 0;
    if (opt.stats_interval_s <= 0) {  // only the pair was asked for
        for (auto& [type, j] : out)
            if (type == "candidate-pair") report_pair(j, by_id);
        return;
    }
    refresh_counts();
    auto counted = [&](const Json& j, bool ours) -> const RtpCounts* {
        if (!j.contains("ssrc")) return nullptr;
        auto it = known_counts.find(j["ssrc"].get<guint32>());
        return it != known_counts.end() && it->second.internal == ours ? &it->second : nullptr;
    };
    std::map<guint32, Json> outbound;  // by SSRC, for the remote-inbound-rtp about each
    for (auto& [type, j] : out) {
        if (type == "inbound-rtp") {
            if (j.contains("ssrc") && rx_repair.count(j["ssrc"].get<guint32>()))
                continue;  // retransmissions: counted in their media stream's entry
            if (const RtpCounts* c = counted(j, false)) {
                j["packetsLost"] = reception.packets_lost(j["ssrc"].get<guint32>())
                                       .value_or(std::max<long long>(c->lost, 0));
                j["packetsReceived"] = c->packets_received;
                j["bytesReceived"] = c->octets_received;
                add_feedback(j, *c);
            }
            const Track* t = track_of_ssrc(j, true);
            // An SSRC heard only in RTCP: the peer's session reports (receiver reports) from
            // its own SSRC before its first RTP packet, when ICE and DTLS are quicker than its
            // media. W3C makes an inbound-rtp at the first RTP packet, not at a report.
            if (!t && j.value("packetsReceived", 0ULL) == 0) continue;
            add_repairs(j, true);
            lost += j.value("packetsLost", 0LL);
            kind_of(j);
            if (t) j["mid"] = t->mid;
            own_decoded(j, t);
        } else if (type == "outbound-rtp") {
            if (j.contains("ssrc") && tx_repair.count(j["ssrc"].get<guint32>()))
                continue;  // our retransmissions: counted in their media stream's entry
            kind_of(j);
            if (const RtpCounts* c = counted(j, true)) {
                j["packetsSent"] = c->packets_sent;
                j["bytesSent"] = c->octets_sent;
                add_feedback(j, *c);
            }
            const Track* t = track_of_ssrc(j, false);
            // Our session's own reporting SSRC, which sends no RTP (as above, the other way).
            if (!t && j.value("packetsSent", 0ULL) == 0) continue;
            if (t) j["mid"] = t->mid;
            if (t) own_sent(j, *t);
            add_repairs(j, false);
            if (j.value("kind", "") == "video") {
                j["framesSent"] = t ? t->n->frames_out.load() : sent_video.load();
                j["targetBitrate"] = video_bitrate_kbps * 1000;
            }
        } else if (type == "candidate-pair") {
            report_pair(j, by_id);
        } else if (type != "transport" && type != "remote-outbound-rtp" && type != "data-channel") {
            continue;  // webrtcbin's remote-inbound-rtp among them: ours follow, one per SSRC
        }
        if (type == "outbound-rtp" && j.contains("ssrc")) outbound[j["ssrc"].get<guint32>()] = j;
        if ((type == "inbound-rtp" || type == "outbound-rtp") && j.contains("ssrc"))
            last_rtp[type + std::to_string(j["ssrc"].get<guint32>())] = {type, j};
        events.emit(type, j);
    }
    packets_lost = lost;
    emit_remote_inbound(outbound);
}

// One remote-inbound-rtp per stream we send, from the peer's newest report block about it
// (receiver_reports.hpp), in W3C names, beside the outbound-rtp of the same SSRC.
void WebRtcEndpoint::Impl::emit_remote_inbound(const std::map<guint32, Json>& outbound) {
    for (const auto& [ssrc, r] : reports.all()) {
        const std::string id = std::to_string(ssrc);
        Json j{{"timestamp", g_get_real_time() / 1000.0},
               {"id", "rtp-remote-inbound-stream-stats_" + id},
               {"localId", "rtp-outbound-stream-stats_" + id},
               {"ssrc", ssrc}};
        auto out = outbound.find(ssrc);
        if (out != outbound.end()) {
            for (const char* k : {"timestamp", "codecId", "transportId", "kind", "mid"})
                if (out->second.contains(k)) j[k] = out->second[k];
        }
        if (!j.contains("kind")) {
            std::lock_guard lock(ssrc_mutex);
            auto it = ssrc_kind.find(ssrc);
            if (it != ssrc_kind.end()) j["kind"] = it->second;
        }
        j["packetsLost"] = r.packets_lost;
        j["fractionLost"] = r.fraction_lost;
        j["reportsReceived"] = r.reports;
        const Track* t = track_of_ssrc(j, false);
        if (t && t->codec && t->codec->clock_rate > 0)
            j["jitter"] = static_cast<double>(r.jitter) / t->codec->clock_rate;
        if (r.rtt >= 0) {
            j["roundTripTime"] = r.rtt;
            j["totalRoundTripTime"] = r.total_rtt;
            j["roundTripTimeMeasurements"] = r.rtt_measurements;
        }
        events.emit("remote-inbound-rtp", j);
    }
}

void WebRtcEndpoint::Impl::report_pair(const Json& pair, std::map<std::string, Json>& by_id) {
    if (selected_pair_reported) return;
    auto cand = [&](const char* key) {
        Json c = Json::object();
        if (pair.contains(key) && by_id.count(pair[key].get<std::string>())) {
            const Json& s = by_id[pair[key].get<std::string>()];
            for (const char* f :
                 {"address", "port", "candidateType", "protocol", "priority", "url"})
                if (s.contains(f)) c[f] = s[f];
        }
        return c;
    };
    selected_pair_reported = true;
    events.emit("selected-candidate-pair",
                Json{{"local", cand("localCandidateId")}, {"remote", cand("remoteCandidateId")}});
}

// The fraction of our video lost since the last look, from the peer's receiver reports about
// its SSRC (receiver_reports.hpp); -1 when no report about it is new.
double WebRtcEndpoint::Impl::video_fraction_lost() {
    guint32 video_ssrc = 0;
    {
        std::lock_guard lock(ssrc_mutex);
        for (const auto& [ssrc, kind] : ssrc_kind)
            if (kind == "video" && sent_ssrcs.count(ssrc)) video_ssrc = ssrc;
    }
    const auto r = video_ssrc ? reports.latest(video_ssrc) : std::nullopt;
    if (!r) return -1;
    // The report's own fraction (RFC 3550 §6.4.1: 8 bits after the binary point) covers the
    // peer's interval, not ours, and reads 0 for a report that reached us late; the cumulative
    // count against the highest sequence number since the last report we used is the robust
    // figure (RFC 3550 A.3).
    auto& [highest, lost] = rb_seen[video_ssrc];
    double f = r->fraction_lost;
    if (highest && r->highest_seq == highest) return -1;  // nothing new since the last look
    if (highest && r->highest_seq > highest)
        f = std::clamp(static_cast<double>(r->packets_lost - lost) / (r->highest_seq - highest),
                       0.0, 1.0);
    highest = r->highest_seq;
    lost = r->packets_lost;
    return f;
}

// A loss-based controller between --min-bitrate and --max-bitrate (the loss half of GCC,
// draft-ietf-rmcat-gcc-02 §6): above 10 % loss back off, below 2 % grow by 8 %.
void WebRtcEndpoint::Impl::adapt_bitrate() {
    if (!video_bitrate_kbps) return;
    // At most once a second, so the rate of change stays the documented one.
    const auto now = Clock::now();
    if (now - last_adapt < std::chrono::seconds(1)) return;
    const double loss = video_fraction_lost();
    if (loss < 0) return;
    last_adapt = now;
    unsigned ceiling = opt.max_bitrate_kbps ? opt.max_bitrate_kbps : 2500;
    if (remote_video_limit_kbps) ceiling = std::min(ceiling, remote_video_limit_kbps);
    const unsigned floor = std::max(opt.min_bitrate_kbps, 30u);
    double next = video_bitrate_kbps;
    if (loss > 0.10)
        next *= (1.0 - 0.5 * loss);
    else if (loss < 0.02)
        next *= 1.08;
    unsigned kbps = std::clamp(static_cast<unsigned>(next), std::min(floor, ceiling), ceiling);
    if (kbps == video_bitrate_kbps) return;
    video_bitrate_kbps = kbps;
    for (auto& t : tracks) {
        if (t.kind != "video" || !t.encoder) continue;
        if (std::string_view(t.codec->name) == "h264")
            g_object_set(t.encoder, "bitrate", kbps, nullptr);
        else
            g_object_set(t.encoder, "target-bitrate", static_cast<gint>(kbps * 1000), nullptr);
    }
    events.emit("bitrate",
                Json{{"kind", "video"}, {"targetBitrate", kbps * 1000}, {"fractionLost", loss}});
}

// The m-line of a stats entry's SSRC: the peer's (inbound) or ours (outbound).
auto WebRtcEndpoint::Impl::track_of_ssrc(const Json& j, bool inbound) const -> const Track* {
    if (!j.contains("ssrc") || !j["ssrc"].is_number()) return nullptr;
    const auto ssrc = j["ssrc"].get<guint32>();
    for (const auto& t : tracks)
        if (inbound ? t.n->rx_ssrc == ssrc : t.ssrc == ssrc) return &t;
    return nullptr;
}

void WebRtcEndpoint::Impl::check_flow() {
    // Kurento's MediaFlowIn: a track that stopped delivering frames since the last report.
    for (const auto& t : tracks) {
        const auto n = t.n->frames_in.load();
        if (n > 0) media_flow("in", t.kind, t.mid, n != last_frames[t.mline]);
        last_frames[t.mline] = n;
    }
}

// Kurento's complaint list: a call that connects but never gets a track it agreed to
// receive must say so. With --media-timeout it fails (exit 6); without, a warning.
void WebRtcEndpoint::Impl::check_expected_tracks(bool fatal) {
    std::string missing;
    for (auto& t : tracks) {
        if (!t.recv || !t.codec || t.n->frames_in > 0 || t.never_arrived_reported) continue;
        t.never_arrived_reported = true;
        missing += (missing.empty() ? "" : ", ") + describe(t);
        Json e{{"direction", "in"}, {"kind", t.kind}, {"state", "never-arrived"}};
        if (!t.mid.empty()) e["mid"] = t.mid;
        events.emit("media-flow", e);
    }
    if (missing.empty()) return;
    const std::string why = "negotiated but never received: " + missing +
                            (last_media_us ? " (other media arrived)" : "");
    if (fatal)
        return fail(ErrorCode::NoMedia,
                    why + " within " + fmt_seconds(opt.media_timeout_s) + " s (--media-timeout)");
    warn(why);
}

void WebRtcEndpoint::Impl::warn(const std::string& message) {
    events.emit("warning", Json{{"message", message}});
    KMS_LOG(webrtc, WARNING, "%s", message.c_str());
    if (cb.warning) cb.warning(message);
}

void WebRtcEndpoint::Impl::emit_timing() {
    if (timing_emitted) return;
    timing_emitted = true;
    Json milestones_json = Json::object();
    Json phases = Json::object();
    std::lock_guard lock(timing_mutex);
    auto at = [&](const char* k) { return milestones.count(k) ? milestones[k] : -1.0; };
    for (const char* k : {"runtimeReady", "pluginsChecked", "pipelineBuilt", "certificateReady",
                          "start", "sdpReady", "remoteDescription", "iceConnected", "dtlsConnected",
                          "firstRtp", "firstFrame"})
        if (at(k) >= 0) milestones_json[k] = std::round(at(k) * 10) / 10;
    auto phase = [&](const char* name, const char* from, const char* to) {
        if (at(from) >= 0 && at(to) >= 0) phases[name] = std::round((at(to) - at(from)) * 10) / 10;
    };
    // What comes before gathering: the process and GStreamer starting (runtime), the plugin
    // check, building and starting the pipeline, and the DTLS certificate, made alongside.
    if (at("runtimeReady") >= 0) phases["runtime"] = std::round(at("runtimeReady") * 10) / 10;
    phase("plugins", "runtimeReady", "pluginsChecked");
    phase("build", "pluginsChecked", "pipelineBuilt");
    phase("certificate", "runtimeReady", "certificateReady");
    phase("gather", "start", "sdpReady");
    // ICE checks start once both descriptions are in place.
    if (at("iceConnected") >= 0 && at("sdpReady") >= 0 && at("remoteDescription") >= 0)
        phases["ice"] =
            std::round((at("iceConnected") - std::max(at("sdpReady"), at("remoteDescription"))) *
                       10) /
            10;
    phase("dtls", "iceConnected", "dtlsConnected");
    phase("firstRtp", "dtlsConnected", "firstRtp");
    phase("firstFrame", "firstRtp", "firstFrame");
    events.emit("timing", Json{{"phases", phases}, {"sinceProcessStart", milestones_json}});
}

void WebRtcEndpoint::Impl::emit_summary() {
    Json per_track = Json::array();
    for (const auto& t : tracks) {
        if (!t.codec || (!t.send && !t.recv)) continue;
        Json j{{"kind", t.kind}, {"codec", t.codec->name}};
        if (!t.mid.empty()) j["mid"] = t.mid;
        if (t.recv)
            j[t.kind == "video" ? "framesDecoded" : "audioFramesDecoded"] = t.n->frames_in.load();
        if (t.send) j[t.kind == "video" ? "framesSent" : "packetsSent"] = t.n->frames_out.load();
        per_track.push_back(j);
    }
    events.emit("summary", Json{{"videoFramesDecoded", frames_video.load()},
                                {"audioFramesDecoded", frames_audio.load()},
                                {"videoFramesSent", sent_video.load()},
                                {"audioPacketsSent", sent_audio.load()},
                                {"dataMessagesSent", dc_sent.load()},
                                {"dataMessagesReceived", dc_received.load()},
                                {"tracks", per_track}});
}

}  // namespace kms
