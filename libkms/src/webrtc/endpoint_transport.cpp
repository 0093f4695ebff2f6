// WebRtcEndpoint::Impl: ICE, DTLS and the check of the peer's certificate against its fingerprint;
// what arrives.
#include "webrtc/endpoint_impl.hpp"

namespace kms {

namespace {
// How long a call with no media may hear nothing: SCTP's heartbeat (30 s, and the round trip)
// with room to spare.
constexpr double kDataOnlyQuietS = 40;
}  // namespace

void WebRtcEndpoint::Impl::on_state(const std::string& prop) {
    if (prop == "ice-gathering-state") {
        GstWebRTCICEGatheringState g{};
        g_object_get(webrtc, "ice-gathering-state", &g, nullptr);
        events.emit("ice-gathering-state",
                    Json{{"state", enum_nick(GST_TYPE_WEBRTC_ICE_GATHERING_STATE, g)}});
        if (g == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) {
            mark("gathered");
            maybe_send_local();
        }
    } else if (prop == "ice-connection-state") {
        // webrtcbin 1.22 aggregates ICE over media transceivers only: a call with nothing
        // but a data channel stays "new" there, so the ICE transports speak for it.
        if (!has_media_tracks()) return;
        GstWebRTCICEConnectionState st{};
        g_object_get(webrtc, "ice-connection-state", &st, nullptr);
        report_ice(enum_nick(GST_TYPE_WEBRTC_ICE_CONNECTION_STATE, st));
    } else if (prop == "connection-state") {
        GstWebRTCPeerConnectionState s{};
        g_object_get(webrtc, "connection-state", &s, nullptr);
        events.emit("connection-state",
                    Json{{"state", enum_nick(GST_TYPE_WEBRTC_PEER_CONNECTION_STATE, s)}});
    }
}

bool WebRtcEndpoint::Impl::has_media_tracks() const {
    return std::any_of(tracks.begin(), tracks.end(), [](const Track& t) { return t.codec; });
}

// One ice-connection-state event per change, in W3C order: webrtcbin 1.22 goes from checking
// straight to completed, and says completed twice.
void WebRtcEndpoint::Impl::report_ice(const std::string& state) {
    if (state == ice_state) return;
    if (state == "completed" && ice_state != "connected") report_ice("connected");
    ice_state = state;
    events.emit("ice-connection-state", Json{{"state", state}});
    if (state == "connected" || state == "completed") {
        mark("iceConnected");
        if (!ice_connected_once) {
            ice_connected_once = true;
            ice_connected_at = Clock::now();
            last_rx_us = g_get_monotonic_time();
            watch_incoming();
        }
        disconnected = false;
    } else if (state == "disconnected") {
        if (!disconnected) disconnected_since = Clock::now();
        disconnected = true;
    } else if (state == "failed") {
        fail(ErrorCode::Network, ice_connected_once
                                     ? "ICE failed: the peer is gone or the path broke"
                                     : "ICE failed: no candidate pair worked; check --bind, "
                                       "--stun and --turn, and that the peer can reach us");
    }
}

void WebRtcEndpoint::Impl::on_ice_transport(gst::ObjectPtr<GstWebRTCICETransport> t) {
    if (has_media_tracks()) return;
    GstWebRTCICEConnectionState st{};
    g_object_get(t.get(), "state", &st, nullptr);
    report_ice(enum_nick(GST_TYPE_WEBRTC_ICE_CONNECTION_STATE, st));
}

void WebRtcEndpoint::Impl::watch_transports() {
    GArray* arr = nullptr;
    g_signal_emit_by_name(webrtc, "get-transceivers", &arr);
    std::vector<GstWebRTCDTLSTransport*> found;
    if (arr) {
        for (guint i = 0; i < arr->len; ++i) {
            auto* trans = g_array_index(arr, GstWebRTCRTPTransceiver*, i);
            GstWebRTCRTPReceiver* recv = nullptr;
            g_object_get(trans, "receiver", &recv, nullptr);
            if (!recv) continue;
            GstWebRTCDTLSTransport* dtls = nullptr;
            g_object_get(recv, "transport", &dtls, nullptr);
            gst_object_unref(recv);
            if (dtls) found.push_back(dtls);
        }
        g_array_unref(arr);
    }
    GstWebRTCSCTPTransport* sctp = nullptr;
    g_object_get(webrtc, "sctp-transport", &sctp, nullptr);
    if (sctp) {
        GstWebRTCDTLSTransport* dtls = nullptr;
        g_object_get(sctp, "transport", &dtls, nullptr);
        if (dtls) found.push_back(dtls);
        gst_object_unref(sctp);
    }
    for (auto* dtls : found) {
        gst::ObjectPtr<GstWebRTCDTLSTransport> owned(dtls);
        if (watched_dtls.count(dtls)) continue;
        watched_dtls.insert(dtls);
        GstWebRTCICETransport* ice_raw = nullptr;
        g_object_get(dtls, "transport", &ice_raw, nullptr);
        if (gst::ObjectPtr<GstWebRTCICETransport> ice(ice_raw); ice) {
            connect(ice.get(), "notify::state",
                    G_CALLBACK(+[](GstWebRTCICETransport* t, GParamSpec*, gpointer d) {
                        if (auto self = from(d)) {
                            GstWebRTCICETransport* raw = gst::ref(t).release();
                            self->post([raw](Impl& s) {
                                s.on_ice_transport(gst::ObjectPtr<GstWebRTCICETransport>(raw));
                            });
                        }
                    }));
            on_ice_transport(gst::ref(ice.get()));
        }
        connect(dtls, "notify::state",
                G_CALLBACK(+[](GstWebRTCDTLSTransport* t, GParamSpec*, gpointer d) {
                    if (auto self = from(d)) {
                        auto owned_t = gst::ref(t);
                        GstWebRTCDTLSTransport* raw = owned_t.release();
                        self->post([raw](Impl& s) {
                            s.on_dtls_state(gst::ObjectPtr<GstWebRTCDTLSTransport>(raw));
                        });
                    }
                }));
        // The state may have changed before we connected.
        on_dtls_state(gst::ref(dtls));
    }
}

void WebRtcEndpoint::Impl::on_dtls_state(gst::ObjectPtr<GstWebRTCDTLSTransport> t) {
    GstWebRTCDTLSTransportState state{};
    g_object_get(t.get(), "state", &state, nullptr);
    if (state == GST_WEBRTC_DTLS_TRANSPORT_STATE_NEW) return;
    if (state == GST_WEBRTC_DTLS_TRANSPORT_STATE_CONNECTED)
        reports.sending_from(webrtc::ReceiverReports::now_ntp());
    events.emit("dtls-state",
                Json{{"state", enum_nick(GST_TYPE_WEBRTC_DTLS_TRANSPORT_STATE, state)}});
    if (state == GST_WEBRTC_DTLS_TRANSPORT_STATE_FAILED)
        return fail(ErrorCode::Negotiation, "DTLS handshake failed");
    if (state == GST_WEBRTC_DTLS_TRANSPORT_STATE_CLOSED && !stopping && verified) {
        events.emit("remote-closed", Json{{"reason", "DTLS closed by the peer"}});
        return wind_down(CallEnd{});
    }
    if (state != GST_WEBRTC_DTLS_TRANSPORT_STATE_CONNECTED || verified) return;
    // webrtcbin 1.22 does not compare the peer's certificate with a=fingerprint
    // (stack-notes.md); without this check anyone on the path could sit in the middle.
    gchar* pem = nullptr;
    g_object_get(t.get(), "remote-certificate", &pem, nullptr);
    gst::GCharPtr owned(pem);
    if (!pem)
        return fail(ErrorCode::Negotiation,
                    "DTLS connected but the peer's certificate is unreadable");
    std::string got = certificate_fingerprint(pem, remote_fp_alg);
    if (got.empty() || got != remote_fp) {
        events.emit("fingerprint",
                    Json{{"verified", false}, {"expected", remote_fp}, {"actual", got}});
        return fail(ErrorCode::Negotiation,
                    "the peer's DTLS certificate does not match the SDP's a=fingerprint (" +
                        remote_fp_alg + " " + remote_fp + " expected, " + got +
                        " presented); someone may be in the middle of the call");
    }
    verified = true;
    open_gates(true);
    add_timer(1500, [](Impl& s) {
        s.input_grace_over = true;
        s.start_input();
        return false;
    });
    start_input();
    mark("dtlsConnected");
    verified_at = Clock::now();
    const bool fatal = opt.media_timeout_s > 0;
    add_timer(static_cast<unsigned>((fatal ? opt.media_timeout_s : kExpectTracksS) * 1000),
              [fatal](Impl& s) {
                  if (!s.stopping) s.check_expected_tracks(fatal);
                  return false;
              });
    // Without periodic stats, one request still finds the selected candidate pair.
    if (opt.stats_interval_s <= 0)
        add_timer(500, [](Impl& s) {
            s.request_stats();
            return false;
        });
    events.emit("fingerprint", Json{{"verified", true}, {"algorithm", remote_fp_alg}});
    for (const auto& [kind, mid] : std::exchange(held_flows, {}))
        media_flow("out", kind, mid, true);
}

// Calls fn on each buffer a pad probe sees, alone or in a list.
template <typename F>
static void each_buffer(GstPadProbeInfo* info, F&& fn) {
    if (!(GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST))
        return fn(GST_PAD_PROBE_INFO_BUFFER(info));
    GstBufferList* l = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    for (guint i = 0; i < gst_buffer_list_length(l); ++i) fn(gst_buffer_list_get(l, i));
}

// Every packet the peer sends (RTP, RTCP, DTLS, SCTP) passes a nicesrc; silence there for
// --ice-timeout means the peer is gone even when ICE has not noticed.
void WebRtcEndpoint::Impl::watch_incoming() {
    // Receiver reports once a second instead of rtpsession's 5 s minimum (RFC 4585 lets AVPF
    // sessions go lower): the bitrate controller and the loss figures need timely feedback.
    for_each_inside("rtpsession", [this](GstElement* e) {
        g_object_set(e, "rtcp-min-interval", static_cast<guint64>(GST_SECOND), nullptr);
        keep_report_blocks(e);
    });
    for_each_inside("nicesrc", [this](GstElement* e) {
        gst::PadPtr src(gst_element_get_static_pad(e, "src"));
        probe(src.get(),
              static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER |
                                           GST_PAD_PROBE_TYPE_BUFFER_LIST),
              [](GstPad*, GstPadProbeInfo*, gpointer d) -> GstPadProbeReturn {
                  if (auto self = from(d)) self->last_rx_us = g_get_monotonic_time();
                  return GST_PAD_PROBE_OK;
              });
    });
    for_each_inside("srtpdec", [this](GstElement* e) {
        // Every RTP packet: counted for the report blocks kms writes (keep_report_blocks), and
        // its MID learnt when the peer sends one (known by now: set_remote came first).
        GstPadProbeCallback count = [](GstPad*, GstPadProbeInfo* info, gpointer d) {
            if (auto self = from(d)) {
                const gint64 now = g_get_monotonic_time();
                each_buffer(info, [&](GstBuffer* b) { self->reception.on_rtp(b, now); });
            }
            return GST_PAD_PROBE_OK;
        };
        GstPadProbeCallback count_and_learn = [](GstPad*, GstPadProbeInfo* info, gpointer d) {
            if (auto self = from(d)) {
                const gint64 now = g_get_monotonic_time();
                each_buffer(info, [&](GstBuffer* b) {
                    self->reception.on_rtp(b, now);
                    self->learn_mid(b);
                });
            }
            return GST_PAD_PROBE_OK;
        };
        if (gst::PadPtr rtp{gst_element_get_static_pad(e, "rtp_src")})
            probe(rtp.get(),
                  static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER |
                                               GST_PAD_PROBE_TYPE_BUFFER_LIST),
                  rx_mid_ext ? count_and_learn : count);
        // Every receiver report block, as it leaves SRTCP decryption (receiver_reports.hpp).
        if (gst::PadPtr rtcp{gst_element_get_static_pad(e, "rtcp_src")})
            probe(rtcp.get(),
                  static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER |
                                               GST_PAD_PROBE_TYPE_BUFFER_LIST),
                  [](GstPad*, GstPadProbeInfo* info, gpointer d) -> GstPadProbeReturn {
                      if (auto self = from(d)) {
                          const guint64 now = webrtc::ReceiverReports::now_ntp();
                          const gint64 mono = g_get_monotonic_time();
                          each_buffer(info, [&](GstBuffer* b) {
                              self->reports.add(b, now);
                              self->reception.on_rtcp(b, mono);
                          });
                      }
                      return GST_PAD_PROBE_OK;
                  });
        for (const char* name : {"rtp_src", "rtcp_src"}) {
            gst::PadPtr src(gst_element_get_static_pad(e, name));
            if (!src) continue;
            probe(src.get(),
                  static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER |
                                               GST_PAD_PROBE_TYPE_BUFFER_LIST),
                  [](GstPad*, GstPadProbeInfo*, gpointer d) -> GstPadProbeReturn {
                      auto self = from(d);
                      if (self && !self->peer_keyed.exchange(true))
                          self->post([](Impl& s) { s.start_input(); });
                      return GST_PAD_PROBE_REMOVE;
                  });
        }
    });
    // The remote's RTCP BYE is an orderly goodbye.
    for_each_inside("rtpbin", [this](GstElement* e) {
        connect(e, "on-bye-ssrc", G_CALLBACK(+[](GstElement*, guint, guint ssrc, gpointer d) {
                    if (auto self = from(d)) self->post([ssrc](Impl& s) { s.on_bye(ssrc); });
                }));
    });
}

// rtpsession 1.22 sends no report block while it keeps asking for retransmissions
// (reception_stats.hpp): kms adds them to its early packets once a second has gone by without,
// and writes its own loss figures into rtpsession's blocks so that the peer reads one series.
void WebRtcEndpoint::Impl::keep_report_blocks(GstElement* rtpsession) {
    GObject* session = nullptr;
    g_object_get(rtpsession, "internal-session", &session, nullptr);
    if (!session) return;
    connect(session, "on-sending-rtcp",
            G_CALLBACK(+[](GObject* sess, GstBuffer* buf, gboolean early, gpointer d) -> gboolean {
                auto self = from(d);
                if (!self) return FALSE;
                // The jitter rtpsession measured (RFC 3550 A.8), from the source's stats.
                auto jitter = [sess](guint32 ssrc) -> guint32 {
                    GObject* src = nullptr;
                    g_signal_emit_by_name(sess, "get-source-by-ssrc", ssrc, &src);
                    if (!src) return 0;
                    GstStructure* st = nullptr;
                    g_object_get(src, "stats", &st, nullptr);
                    guint j = 0;
                    if (st) gst_structure_get_uint(st, "jitter", &j);
                    if (st) gst_structure_free(st);
                    g_object_unref(src);
                    return j;
                };
                self->reception.supplement(buf, early, g_get_monotonic_time(), jitter);
                return FALSE;  // no say in whether rtpsession sends it
            }));
    g_object_unref(session);
}

// RFC 3550 §6.6: a BYE says one source left. A peer that sends several streams may end one
// before the others (webrtcbin's rtpsession says BYE for the first of a bundle's streams to
// end, as a file input's audio does a moment before its video, and nothing for the rest); the
// call is over when every stream that came has left, or, after a BYE, when media stops.
// 1.22's rtpsession marks every SSRC of the session BYE when one of its streams ends, so a
// BYE naming them all can come while the rest still flows: it is believed once media stops
// too, a moment later (without this, the peer's call ended before its input did).
void WebRtcEndpoint::Impl::on_bye(guint32 ssrc) {
    if (stopping) return;
    byes.insert(ssrc);
    std::string left;
    for (const auto& t : tracks) {
        const guint32 rx = t.n->rx_ssrc;
        if (!t.recv || !rx || byes.count(rx)) continue;
        left += (left.empty() ? "" : ", ") + describe(t);
    }
    bye_all = left.empty();
    const gint64 quiet = g_get_monotonic_time() - last_media_us;
    if (bye_all && quiet >= kByeAllQuietUs) return remote_bye();
    KMS_LOG(webrtc, INFO, "RTCP BYE for SSRC %u; %s%s", ssrc,
            bye_all ? "media still flows" : "still receiving ", left.c_str());
    if (bye_watch) return;
    bye_watch = true;
    add_timer(100, [](Impl& s) {
        if (s.stopping) return false;
        const gint64 still = g_get_monotonic_time() - s.last_media_us;
        if (still < (s.bye_all ? kByeAllQuietUs : kByeQuietUs)) return true;
        s.remote_bye();
        return false;
    });
}

void WebRtcEndpoint::Impl::remote_bye() {
    events.emit("remote-closed", Json{{"reason", "RTCP BYE from the peer"}});
    wind_down(CallEnd{});
}

// The MID a new SSRC's packets carry, before rtpbin makes a pad for it (track_for() reads it).
// Streaming thread.
void WebRtcEndpoint::Impl::learn_mid(GstBuffer* buf) {
    const guint32 ssrc = webrtc::read_ssrc(buf);
    if (!ssrc) return;
    std::lock_guard lock(ssrc_mutex);
    if (rx_mids.count(ssrc) || rx_mids.size() >= 64) return;
    // Senders put the MID in a stream's first packets at least (RFC 8843 §15.2); the first
    // one decides, so the rest cost a lookup only.
    rx_mids.emplace(ssrc, webrtc::read_mid(buf, rx_mid_ext));
}

void WebRtcEndpoint::Impl::start_watchdogs() {
    const auto started = Clock::now();
    add_timer(250, [started](Impl& s) {
        const double since = std::chrono::duration<double>(Clock::now() - started).count();
        if (s.stopping) return false;
        if (!s.ice_connected_once && since > s.opt.ice_timeout_s) {
            s.fail(ErrorCode::Network,
                   "ICE did not connect within " + fmt_seconds(s.opt.ice_timeout_s) +
                       " s; check --bind, --stun and --turn, and that the peer can reach us");
            return false;
        }
        if (s.disconnected &&
            std::chrono::duration<double>(Clock::now() - s.disconnected_since).count() >
                s.opt.ice_timeout_s) {
            s.fail(ErrorCode::Network, "ICE disconnected for more than " +
                                           fmt_seconds(s.opt.ice_timeout_s) +
                                           " s: the peer is gone");
            return false;
        }
        if (s.ice_connected_once && !s.verified &&
            std::chrono::duration<double>(Clock::now() - s.ice_connected_at).count() >
                s.opt.ice_timeout_s) {
            s.fail(ErrorCode::Negotiation,
                   "ICE connected but the DTLS handshake did not finish within " +
                       fmt_seconds(s.opt.ice_timeout_s) + " s");
            return false;
        }
        if (s.ice_connected_once) {
            // A call with a data channel alone may be quiet for as long as nobody types: then
            // only SCTP's heartbeat, every 30 s, says the peer is there (ICE's own keepalives
            // are indications, which nothing answers and libnice does not pass on).
            const double limit = s.has_media_tracks()
                                     ? s.opt.ice_timeout_s
                                     : std::max(s.opt.ice_timeout_s, kDataOnlyQuietS);
            const double quiet = (g_get_monotonic_time() - s.last_rx_us) / 1e6;
            if (quiet > limit) {
                s.fail(ErrorCode::Network, "nothing heard from the peer for " +
                                               std::to_string(int(quiet)) +
                                               " s: it is gone or the path broke");
                return false;
            }
        }
        // --media-timeout counts what arrives, whatever was negotiated: a peer that answered
        // recvonly, or sends nothing, is exactly what it is there to catch.
        if (s.opt.media_timeout_s > 0) {
            const int64_t last = s.last_media_us;
            const double quiet = last ? (g_get_monotonic_time() - last) / 1e6 : since;
            if (quiet > s.opt.media_timeout_s) {
                const std::string secs = fmt_seconds(s.opt.media_timeout_s);
                s.fail(ErrorCode::NoMedia,
                       last ? "media stopped: nothing received for " + secs + " s (--media-timeout)"
                            : "no media received within " + secs + " s (--media-timeout)");
                return false;
            }
        }
        return true;
    });
    // Whatever --stats-interval is (0 included): the bitrate follows the loss the peer reports,
    // looked at four times a second so that a new receiver report is acted on at once (the
    // controller itself moves at most once a second), and media-flow follows what is decoded,
    // once a second.
    add_timer(250, [](Impl& s) {
        if (s.stopping) return false;
        s.adapt_bitrate();
        if (++s.flow_ticks % 4 == 0) s.check_flow();
        return true;
    });
    if (opt.stats_interval_s > 0)
        add_timer(static_cast<unsigned>(opt.stats_interval_s * 1000), [](Impl& s) {
            s.request_stats();
            return true;
        });
}

// ---- statistics ----------------------------------------------------------------------------

void WebRtcEndpoint::Impl::request_stats() {
    if (!verified) return;
    g_signal_emit_by_name(webrtc, "get-stats", nullptr, promise(&Impl::on_stats));
}

}  // namespace kms
