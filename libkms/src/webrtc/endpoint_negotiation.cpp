// WebRtcEndpoint::Impl: Offer and answer: codecs, directions, SSRCs and header extensions per
// m-line.
#include "webrtc/endpoint_impl.hpp"

#include <random>

namespace kms {

GstPromise* WebRtcEndpoint::Impl::promise(PromiseHandler handler) {
    struct Ctx {
        std::weak_ptr<Impl> self;
        PromiseHandler handler;
    };
    auto* ctx = new Ctx{weak_from_this(), handler};
    return gst_promise_new_with_change_func(
        [](GstPromise* p, gpointer d) {
            // The change function runs once per promise: it adopts the reference that
            // gst_promise_new_with_change_func() gave us (webrtcbin holds one of its own).
            // Adding one instead leaked every promise with its reply: 20 KB per stats
            // request, 4 KB/s at --stats-interval 5.
            std::shared_ptr<GstPromise> owned(p, gst_promise_unref);
            auto* c = static_cast<Ctx*>(d);
            auto self = c->self.lock();
            if (!self) return;
            PromiseHandler h = c->handler;
            self->post([owned, h](Impl& s) { (s.*h)(owned.get()); });
        },
        ctx, [](gpointer d) { delete static_cast<Ctx*>(d); });
}

// Whether a promise succeeded; on failure the call ends naming what went wrong. A success
// may carry no structure (set-*-description replies with none).
bool WebRtcEndpoint::Impl::replied(GstPromise* p, const char* what, const GstStructure** reply) {
    if (gst_promise_wait(p) != GST_PROMISE_RESULT_REPLIED) {
        fail(ErrorCode::Runtime, std::string(what) + " did not complete");
        return false;
    }
    const GstStructure* r = gst_promise_get_reply(p);
    GError* err = nullptr;
    if (r && gst_structure_has_field(r, "error") &&
        gst_structure_get(r, "error", G_TYPE_ERROR, &err, nullptr) && err) {
        gst::GErrorPtr owned(err);
        fail(ErrorCode::Negotiation, std::string(what) + " failed: " + err->message);
        return false;
    }
    if (reply) *reply = r;
    return true;
}

void WebRtcEndpoint::Impl::start() {
    mark("pipelineBuilt");
    mark("start");
    if (opt.role == Role::Offerer) {
        add_offer_transceivers();
        // webrtcbin refuses data channels while it is in the NULL state.
        if (!opt.data_label.empty()) create_channel();
        g_signal_emit_by_name(webrtc, "create-offer", nullptr, promise(&Impl::on_offer_created));
    }
}

void WebRtcEndpoint::Impl::limit_bandwidth(GstSDPMessage* sdp) {
    if (!opt.max_bitrate_kbps) return;
    for (guint i = 0; i < gst_sdp_message_medias_len(sdp); ++i) {
        auto* m = const_cast<GstSDPMedia*>(gst_sdp_message_get_media(sdp, i));
        if (g_strcmp0(gst_sdp_media_get_media(m), "video") != 0) continue;
        // RFC 8866 §5.8 b=AS in kbit/s; RFC 3890 b=TIAS in bit/s, without IP/UDP overhead.
        gst_sdp_media_add_bandwidth(m, "AS", opt.max_bitrate_kbps);
        gst_sdp_media_add_bandwidth(m, "TIAS", opt.max_bitrate_kbps * 1000);
    }
}

// webrtcbin 1.22 gives an answer the offer's o= session id. The answerer's session is its own
// (RFC 3264 §6; JSEP §5.3.1: 63 random bits), and an SFU or a log that keys sessions by their
// o= line would take the two sides of a call for one.
void WebRtcEndpoint::Impl::own_origin(GstSDPMessage* sdp) {
    const GstSDPOrigin* o = gst_sdp_message_get_origin(sdp);
    // Copies: set_origin frees the strings it replaces.
    const std::string version = o && o->sess_version ? o->sess_version : "0";
    std::random_device rd;
    const guint64 id = ((guint64(rd()) << 32) | rd()) & G_MAXINT64;
    gst_sdp_message_set_origin(sdp, "-", std::to_string(id).c_str(), version.c_str(), "IN", "IP4",
                               "0.0.0.0");
}

// webrtcbin 1.22 hashes the whole PEM of a transport for a=fingerprint, so with our certificate
// and key (give_certificate) what it writes is no certificate's hash; but it tells which PEM
// the transport holds. Each one written must be ours, and becomes our certificate's own
// SHA-256 (RFC 8122). A transport left with dtlsdec's default certificate would carry the call
// on a key made cheap because unused: that is refused.
bool WebRtcEndpoint::Impl::put_fingerprint(GstSDPMessage* sdp) const {
    const std::string theirs = "sha-256 " + webrtc::webrtcbin_fingerprint(dtls_pem);
    const std::string ours = "sha-256 " + webrtc::certificate_fingerprint(dtls_pem, "sha-256");
    for (guint i = 0; i < gst_sdp_message_medias_len(sdp); ++i) {
        auto* m = const_cast<GstSDPMedia*>(gst_sdp_message_get_media(sdp, i));
        for (guint a = 0; a < gst_sdp_media_attributes_len(m); ++a) {
            const GstSDPAttribute* at = gst_sdp_media_get_attribute(m, a);
            if (g_strcmp0(at->key, "fingerprint") != 0) continue;
            if (!at->value || g_ascii_strcasecmp(at->value, theirs.c_str()) != 0) return false;
            GstSDPAttribute fixed;
            gst_sdp_attribute_set(&fixed, "fingerprint", ours.c_str());
            gst_sdp_media_replace_attribute(m, a, &fixed);
        }
    }
    // webrtcbin writes it per m-line only; one at session level would be unchecked. None at
    // all (every m-line refused) leaves nothing to check, and no DTLS.
    return !gst_sdp_message_get_attribute_val(sdp, "fingerprint");
}

void WebRtcEndpoint::Impl::on_offer_created(GstPromise* p) {
    const GstStructure* r = nullptr;
    if (!replied(p, "creating the offer", &r)) return;
    if (!r) return fail(ErrorCode::Runtime, "webrtcbin made no offer");
    GstWebRTCSessionDescription* offer = nullptr;
    gst_structure_get(r, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, nullptr);
    gst::SessionDescriptionPtr owned(offer);
    if (!offer) return fail(ErrorCode::Runtime, "webrtcbin made no offer");
    if (!put_fingerprint(offer->sdp))
        return fail(ErrorCode::Runtime, "webrtcbin did not take kms's DTLS certificate");
    limit_bandwidth(offer->sdp);
    describe_streams(offer->sdp);
    g_signal_emit_by_name(webrtc, "set-local-description", offer, promise(&Impl::on_local_set));
}

void WebRtcEndpoint::Impl::on_local_set(GstPromise* p) {
    if (!replied(p, "setting the local description")) return;
    // Gathering gets --ice-timeout: without a usable interface, or with a server that never
    // answers, webrtcbin would wait for ever and no description would be written.
    add_timer(static_cast<unsigned>(opt.ice_timeout_s * 1000), [](Impl& s) {
        if (s.local_sent) return false;
        std::string why = s.gathering_failure();
        if (!why.empty()) {
            s.fail(ErrorCode::Network, why);
            return false;
        }
        // Every server named has given its candidate, and something else is still being asked:
        // a bare turn: URI asks over TCP too, and libnice waits 7.9 s for a TCP answer that a
        // firewall swallows. What was found is enough to call with, as a browser would.
        unsigned n = 0;
        for (const auto& [type, count] : s.candidates_by_type) n += count;
        std::string msg = "ICE gathering did not finish within " +
                          fmt_seconds(s.opt.ice_timeout_s) + " s (--ice-timeout); sending the " +
                          std::to_string(n) + " candidate(s) found so far";
        s.warn(msg);
        s.maybe_send_local(true);
        return false;
    });
    events.emit("signaling", Json{{"state", "local-description-set"}});
    if (opt.role == Role::Answerer) watch_transports();
    maybe_send_local();
}

std::string WebRtcEndpoint::Impl::gathering_failure() const {
    std::string why = "ICE gathering did not finish within " + fmt_seconds(opt.ice_timeout_s) +
                      " s (--ice-timeout): ";
    if (candidates_by_type.empty())
        return why +
               "no local candidates; is there a network interface? (in a namespace with "
               "only lo, give --bind 127.0.0.1)";
    if (!opt.ice.stun.empty() && !candidates_by_type.count("srflx"))
        return why + "no answer from the STUN server " + opt.ice.stun;
    if (!opt.ice.turn.empty() && !candidates_by_type.count("relay"))
        return why + "no relay from the TURN server(s)";
    return "";
}

void WebRtcEndpoint::Impl::maybe_send_local(bool even_if_gathering) {
    if (local_sent) return;
    GstWebRTCICEGatheringState g{};
    g_object_get(webrtc, "ice-gathering-state", &g, nullptr);
    if (g != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE && !even_if_gathering) return;
    GstWebRTCSessionDescription* desc = nullptr;
    g_object_get(webrtc, "local-description", &desc, nullptr);
    gst::SessionDescriptionPtr owned(desc);
    if (!desc) return;
    gst::GCharPtr text(gst_sdp_message_as_text(desc->sdp));
    local_sent = true;
    mark("sdpReady");
    events.emit("local-description",
                Json{{"sdpType", desc->type == GST_WEBRTC_SDP_TYPE_OFFER ? "offer" : "answer"}});
    if (cb.local_description) cb.local_description(text.get());
    if (opt.role == Role::Answerer) start_watchdogs();
}

// Picks, for each offered m-line, the first codec (in the offer's order) that we accept.
void WebRtcEndpoint::Impl::choose_codecs(const Sdp& sdp) {
    tracks.clear();
    // Each send source of a kind takes the next m-line of that kind the peer receives on.
    std::map<std::string, std::vector<int>> unsent{{"video", sources_of("video")},
                                                   {"audio", sources_of("audio")}};
    remote_data = false;
    for (size_t i = 0; i < sdp.media.size(); ++i) {
        const SdpMedia& m = sdp.media[i];
        // The peer's data channel is taken (webrtcbin answers its SCTP line itself).
        if (m.kind == "application" && !m.rejected()) remote_data = true;
        if (m.kind != "audio" && m.kind != "video") continue;
        Track t;
        t.kind = m.kind;
        t.mline = static_cast<int>(i);
        t.mid = m.mid;
        if (m.rejected() || (m.kind == "video" ? !opt.video : !opt.audio)) {
            tracks.push_back(t);
            continue;
        }
        const auto& ours = m.kind == "video" ? opt.video_codecs : opt.audio_codecs;
        for (const auto& c : m.codecs) {
            const CodecInfo* info = webrtc::find_codec(c.name);
            if (!info || std::find(ours.begin(), ours.end(), info->name) == ours.end()) continue;
            if (info->clock_rate != c.clock_rate && c.clock_rate != 0) continue;
            t.codec = info;
            t.pt = c.payload;
            break;
        }
        if (!t.codec) {
            std::string theirs, mine;
            for (const auto& c : m.codecs)
                if (c.name != "rtx" && c.name != "red" && c.name != "ulpfec" &&
                    c.name != "telephone-event" && !c.name.empty() &&
                    theirs.find(c.name) == std::string::npos)
                    theirs += (theirs.empty() ? "" : ", ") + c.name;
            for (const auto& c : ours) mine += (mine.empty() ? "" : ", ") + c;
            throw Error(ErrorCode::Negotiation, "no common " + m.kind + " codec (line " +
                                                    std::to_string(m.line) + "): the peer offers " +
                                                    (theirs.empty() ? "none" : theirs) +
                                                    "; we accept " + mine);
        }
        const bool peer_sends = m.direction == "sendrecv" || m.direction == "sendonly";
        const bool peer_recvs = m.direction == "sendrecv" || m.direction == "recvonly";
        auto& free = unsent[t.kind];
        t.send = peer_recvs && !free.empty();
        if (t.send) {
            t.source = free.front();
            free.erase(free.begin());
            t.ssrc = new_ssrc(tracks);
        }
        t.recv = peer_sends && opt.direction != MediaDirection::SendOnly;
        tracks.push_back(t);
    }
    // The offer's data channel needs SCTP, which --data would have checked before the call.
    if (remote_data && opt.data_label.empty())
        require_elements(
            {{"sctpenc", "gstreamer1.0-plugins-bad"}, {"sctpdec", "gstreamer1.0-plugins-bad"}});
    check_something_to_carry("the offer");
}

// What the user asked for wins over what the peer proposed; when the two leave no media
// either way (and no data channel), there is no call to make.
void WebRtcEndpoint::Impl::check_something_to_carry(const char* theirs) const {
    if (!opt.data_label.empty() || remote_data) return;
    if (std::any_of(tracks.begin(), tracks.end(),
                    [](const Track& t) { return t.codec && (t.send || t.recv); }))
        return;
    const char* ours = opt.direction == MediaDirection::SendOnly   ? "we only send (--sendonly)"
                       : opt.direction == MediaDirection::RecvOnly ? "we only receive (--recvonly)"
                                                                   : "we send and receive";
    throw Error(ErrorCode::Negotiation, std::string("nothing to carry: ") + ours + ", and " +
                                            theirs + " leaves no media line that goes either way");
}

// Whether what is connected in as slot i has this kind at all (an audio-only file offers no
// video).
bool WebRtcEndpoint::Impl::source_has(size_t i, const std::string& kind) const {
    const Slot& s = slots[i];
    return !s.known || (kind == "video" ? s.video : s.audio);
}

// What is connected in and has this kind, in connect() order: each gets an m-line.
std::vector<int> WebRtcEndpoint::Impl::sources_of(const std::string& kind) const {
    std::vector<int> out;
    if (opt.direction == MediaDirection::RecvOnly) return out;
    for (size_t i = 0; i < slots.size(); ++i)
        if (source_has(i, kind)) out.push_back(static_cast<int>(i));
    return out;
}

guint32 WebRtcEndpoint::Impl::new_ssrc(const std::vector<Track>& taken) {
    for (;;) {
        const guint32 s = g_random_int();
        if (s &&
            std::none_of(taken.begin(), taken.end(), [s](const Track& t) { return t.ssrc == s; }))
            return s;
    }
}

// The transceiver of an m-line: its negotiated MID and its name, which webrtcbin writes as
// the track id of its a=ssrc msid lines (so a=msid says the same).

// webrtcbin 1.22 answers with directions of its own (sendrecv for --sendonly, recvonly for
// --no-audio), whatever the transceivers are told, so each m-line's direction is set here.
std::pair<bool, bool> WebRtcEndpoint::Impl::answer_direction(const Track& t) const {
    return {t.codec && t.send, t.codec && t.recv};
}

void WebRtcEndpoint::Impl::set_answer_directions(GstSDPMessage* sdp) {
    for (const auto& t : tracks) {
        if (t.mline < 0 || static_cast<guint>(t.mline) >= gst_sdp_message_medias_len(sdp)) continue;
        auto* m = const_cast<GstSDPMedia*>(gst_sdp_message_get_media(sdp, t.mline));
        if (m->port == 0) continue;  // rejected by webrtcbin: no codec in common
        for (guint i = gst_sdp_media_attributes_len(m); i-- > 0;) {
            const char* key = gst_sdp_media_get_attribute(m, i)->key;
            for (const char* d : {"sendrecv", "sendonly", "recvonly", "inactive"})
                if (g_strcmp0(key, d) == 0) {
                    gst_sdp_media_remove_attribute(m, i);
                    break;
                }
        }
        auto [send, recv] = answer_direction(t);
        gst_sdp_media_add_attribute(m,
                                    send && recv ? "sendrecv"
                                    : send       ? "sendonly"
                                    : recv       ? "recvonly"
                                                 : "inactive",
                                    "");  // not NULL: gst_sdp_media_attributes_to_caps reads it
    }
}

// For the offerer: what the answer accepted, m-line by m-line.
void WebRtcEndpoint::Impl::read_answer(const Sdp& sdp) {
    size_t av = 0;
    for (size_t i = 0; i < sdp.media.size(); ++i) {
        const SdpMedia& m = sdp.media[i];
        if (m.kind != "audio" && m.kind != "video") continue;
        if (av >= tracks.size()) break;
        Track& t = tracks[av++];
        // RFC 8829 §5.3.1: an answer keeps the offer's m-lines in order and kind.
        if (m.kind != t.kind)
            throw Error(ErrorCode::BadInput, "answer SDP line " + std::to_string(m.line) + ": m=" +
                                                 m.kind + " where the offer had m=" + t.kind);
        t.mline = static_cast<int>(i);
        t.mid = m.mid;
        if (m.rejected() || m.codecs.empty()) continue;
        for (const auto& c : m.codecs) {
            const CodecInfo* info = webrtc::find_codec(c.name);
            if (!info) continue;
            t.codec = info;
            t.pt = c.payload;
            break;
        }
        if (!t.codec)
            throw Error(ErrorCode::Negotiation, "the answer's " + m.kind + " line " +
                                                    std::to_string(m.line) +
                                                    " names no codec we offered");
        t.send = (m.direction == "sendrecv" || m.direction == "recvonly") && t.source >= 0;
        t.recv = (m.direction == "sendrecv" || m.direction == "sendonly") &&
                 opt.direction != MediaDirection::SendOnly;
    }
    bool any = std::any_of(tracks.begin(), tracks.end(), [](const Track& t) { return t.codec; });
    if (!any && !tracks.empty() && opt.data_label.empty())
        throw Error(ErrorCode::Negotiation,
                    "the answer rejected every media line; no common codec");
    check_something_to_carry("the answer");
}

unsigned WebRtcEndpoint::Impl::remote_video_bandwidth(const Sdp& sdp) {
    // The peer's b=AS on its video m-line caps what we send (RFC 8866 §5.8).
    unsigned limit = 0;
    for (const auto& m : sdp.media)
        if (m.kind == "video" && m.bandwidth_kbps) limit = m.bandwidth_kbps;
    return limit;
}

void WebRtcEndpoint::Impl::set_remote(const std::string& text) {
    if (remote_applied)
        throw Error(ErrorCode::InvalidArgument, "a remote description was already applied");
    SdpParse parsed = parse_sdp(text, true);
    if (!parsed) {
        const SdpError& e = parsed.error;
        std::string where = e.line ? "line " + std::to_string(e.line) + ": " : "";
        if (e.message.rfind("line ", 0) == 0) where.clear();
        throw Error(e.code, std::string(opt.role == Role::Offerer ? "answer" : "offer") + " SDP " +
                                where + e.message);
    }
    const Sdp& sdp = *parsed.sdp;
    remote_fp_alg = sdp.fingerprint_algorithm;
    remote_fp = sdp.fingerprint;
    remote_video_limit_kbps = remote_video_bandwidth(sdp);
    gst::SdpMessagePtr msg;
    {
        GstSDPMessage* raw = nullptr;
        gst_sdp_message_new(&raw);
        msg.reset(raw);
        gst_sdp_message_parse_buffer(reinterpret_cast<const guint8*>(sdp.text.data()),
                                     static_cast<guint>(sdp.text.size()), msg.get());
    }
    remote_applied = true;
    mark("remoteDescription");
    announced_rx = webrtc::announced_ssrcs(msg.get());
    rx_repair = webrtc::repair_ssrcs(msg.get());
    {
        std::lock_guard lock(ssrc_mutex);
        rx_audio_ssrcs.clear();
        rx_nack_video = false;
        for (guint i = 0; i < gst_sdp_message_medias_len(msg.get()); ++i) {
            const char* media = gst_sdp_media_get_media(gst_sdp_message_get_media(msg.get(), i));
            if (g_strcmp0(media, "video") == 0) rx_nack_video = true;
            if (g_strcmp0(media, "audio") != 0) continue;
            for (const auto& [ssrc, mline] : announced_rx)
                if (mline == static_cast<int>(i)) rx_audio_ssrcs.insert(ssrc);
        }
    }
    rx_mid_ext = webrtc::bundle_extmap_ids(msg.get()).mid;
    if (opt.role == Role::Answerer) {
        choose_codecs(sdp);
        agree_extensions(msg.get());
        gst::SessionDescriptionPtr desc(
            gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, msg.release()));
        g_signal_emit_by_name(webrtc, "set-remote-description", desc.get(),
                              promise(&Impl::on_remote_offer_set));
    } else {
        read_answer(sdp);
        agree_extensions(msg.get());
        link_senders();
        gst::SessionDescriptionPtr desc(
            gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, msg.release()));
        g_signal_emit_by_name(webrtc, "set-remote-description", desc.get(),
                              promise(&Impl::on_remote_answer_set));
    }
}

// The header extensions of each m-line are the ones the peer's description gives it: an
// offer's ids are the answer's (RFC 8285 §6), and an answer keeps of ours what it accepts.
void WebRtcEndpoint::Impl::agree_extensions(const GstSDPMessage* remote) {
    for (auto& t : tracks)
        if (t.mline >= 0 && static_cast<guint>(t.mline) < gst_sdp_message_medias_len(remote))
            t.ext = webrtc::extmap_ids(gst_sdp_message_get_media(remote, t.mline));
}

// Our SSRC, MID and TWCC on each m-line we send on, a=msid on it, and of the extensions only
// those agreed (webrtcbin copies every one an offer lists into its answer).
void WebRtcEndpoint::Impl::describe_streams(GstSDPMessage* sdp) {
    for (const auto& t : tracks) {
        if (t.mline < 0 || static_cast<guint>(t.mline) >= gst_sdp_message_medias_len(sdp)) continue;
        auto* m = const_cast<GstSDPMedia*>(gst_sdp_message_get_media(sdp, t.mline));
        // Port 0 is a rejected m-line in an answer, a bundle-only one in our offer.
        if (m->port == 0 && opt.role == Role::Answerer) continue;
        webrtc::keep_extmaps(m, t.ext);
        webrtc::drop_repeated(m, "ssrc");
        if (t.ssrc && !t.msid_track.empty()) webrtc::add_msid(m, stream_id, t.msid_track);
    }
    tx_repair = webrtc::repair_ssrcs(sdp);
}

void WebRtcEndpoint::Impl::link_senders() {
    for (auto& t : tracks) {
        if (!t.codec || !t.send) continue;
        link_sender(t);
        Json ev{{"direction", "out"},
                {"kind", t.kind},
                {"codec", t.codec->name},
                {"payloadType", t.pt},
                {"ssrc", t.ssrc}};
        if (!t.mid.empty()) ev["mid"] = t.mid;
        events.emit("track", ev);
    }
    senders_ready = true;
    link_feeds();
}

// The answer: a transceiver per m-line with the one codec, direction, SSRC and extensions we
// chose. webrtcbin 1.22 makes an answerer's transceivers only in create-answer, matching each
// m-line to the first free transceiver whose codec preferences fit it, whatever its m-line;
// the offer's a-mid in our preferences makes each fit its own m-line only.
void WebRtcEndpoint::Impl::on_remote_offer_set(GstPromise* p) {
    if (!replied(p, "applying the offer")) return;
    try {
        link_senders();  // sink_N pads: webrtcbin makes their transceivers
        for (auto& t : tracks) {
            if (!t.codec) continue;  // rejected: set_answer_directions() says so
            auto [send, recv] = answer_direction(t);
            GstWebRTCRTPTransceiverDirection dir =
                send && recv ? GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV
                : send       ? GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY
                : recv       ? GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY
                             : GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_INACTIVE;
            gst::CapsPtr caps(codec_caps(*t.codec, t.pt, false));
            webrtc::add_to_caps(caps.get(), t.ext, send ? t.ssrc : 0);
            if (!t.mid.empty())
                gst_caps_set_simple(caps.get(), "a-mid", G_TYPE_STRING, t.mid.c_str(), nullptr);
            if (!t.transceiver) {
                GstWebRTCRTPTransceiver* trans = nullptr;
                g_signal_emit_by_name(webrtc, "add-transceiver", dir, caps.get(), &trans);
                t.transceiver = adopt(trans);
            }
            if (!t.transceiver)
                throw Error(ErrorCode::Runtime,
                            "webrtcbin would not add a transceiver for " + describe(t));
            g_object_set(t.transceiver.get(), "direction", dir, "do-nack", t.kind == "video",
                         "codec-preferences", caps.get(), nullptr);
            t.msid_track = GST_OBJECT_NAME(t.transceiver.get());
            KMS_LOG(webrtc, INFO, "m-line %d: %s %s", t.mline, t.codec->name,
                    direction_name(dir).c_str());
        }
    } catch (const Error& e) {
        return fail(e.code(), e.what());
    }
    g_signal_emit_by_name(webrtc, "create-answer", nullptr, promise(&Impl::on_answer_created));
}

void WebRtcEndpoint::Impl::on_answer_created(GstPromise* p) {
    const GstStructure* r = nullptr;
    if (!replied(p, "creating the answer", &r)) return;
    if (!r) return fail(ErrorCode::Negotiation, "webrtcbin made no answer");
    GstWebRTCSessionDescription* answer = nullptr;
    gst_structure_get(r, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, nullptr);
    gst::SessionDescriptionPtr owned(answer);
    if (!answer) return fail(ErrorCode::Negotiation, "webrtcbin made no answer");
    if (!put_fingerprint(answer->sdp))
        return fail(ErrorCode::Runtime, "webrtcbin did not take kms's DTLS certificate");
    limit_bandwidth(answer->sdp);
    own_origin(answer->sdp);
    set_answer_directions(answer->sdp);
    describe_streams(answer->sdp);
    g_signal_emit_by_name(webrtc, "set-local-description", answer, promise(&Impl::on_local_set));
}

void WebRtcEndpoint::Impl::on_remote_answer_set(GstPromise* p) {
    if (!replied(p, "applying the answer")) return;
    events.emit("signaling", Json{{"state", "stable"}});
    watch_transports();
    start_watchdogs();
}

// ---- ICE, DTLS and the fingerprint check ---------------------------------------------------

void WebRtcEndpoint::Impl::on_candidate(guint mline, const std::string& cand) {
    // "candidate:1 1 UDP 2015363327 127.0.0.1 40236 typ host"
    std::string c = cand.rfind("candidate:", 0) == 0 ? cand.substr(10) : cand;
    std::vector<std::string> f;
    size_t i = 0;
    while (i < c.size()) {
        size_t j = c.find(' ', i);
        if (j == std::string::npos) j = c.size();
        f.push_back(c.substr(i, j - i));
        i = j + 1;
    }
    Json ev{{"sdpMLineIndex", mline}, {"candidate", cand}};
    if (f.size() >= 8) {
        ev["foundation"] = f[0];
        // W3C's RTCIceCandidate.protocol, as selected-candidate-pair and kms-stun gather say
        // it: "udp" or "tcp", where the SDP line says UDP.
        std::string proto = f[2];
        for (auto& ch : proto) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        ev["protocol"] = proto;
        ev["priority"] = std::strtoul(f[3].c_str(), nullptr, 10);
        ev["address"] = f[4];
        ev["port"] = std::atoi(f[5].c_str());
        ev["candidateType"] = f[7];
        ++candidates_by_type[f[7]];
    }
    ev["elapsed"] = process_uptime_ms();
    events.emit("local-candidate", ev);
}

}  // namespace kms
