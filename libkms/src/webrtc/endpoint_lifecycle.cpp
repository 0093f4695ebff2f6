// WebRtcEndpoint::Impl: Plumbing (posting to the main context, timers, signals, probes), the bus,
// and the stop.
#include "webrtc/endpoint_impl.hpp"

namespace kms {

// ---- plumbing ------------------------------------------------------------------------------

// One-shot timers remove themselves when they fire, so look each one up first.
void WebRtcEndpoint::Impl::cancel_timers() {
    for (guint t : timers)
        if (GSource* src = g_main_context_find_source_by_id(nullptr, t)) g_source_destroy(src);
    timers.clear();
}

void WebRtcEndpoint::Impl::add_timer(unsigned ms, std::function<bool(Impl&)> fn) {
    struct Job {
        std::weak_ptr<Impl> self;
        std::function<bool(Impl&)> fn;
    };
    auto* job = new Job{weak_from_this(), std::move(fn)};
    timers.push_back(g_timeout_add_full(
        G_PRIORITY_DEFAULT, ms,
        [](gpointer data) -> gboolean {
            auto* j = static_cast<Job*>(data);
            auto self = j->self.lock();
            if (!self || self->ended) return G_SOURCE_REMOVE;
            return j->fn(*self) ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
        },
        job, [](gpointer data) { delete static_cast<Job*>(data); }));
}

// A C signal handler whose user data is a weak reference to this Impl.
void WebRtcEndpoint::Impl::connect(gpointer instance, const char* signal, GCallback handler) {
    gulong id = g_signal_connect_data(
        instance, signal, handler, weak_ref(),
        [](gpointer data, GClosure*) { drop_weak_ref(data); }, static_cast<GConnectFlags>(0));
    std::lock_guard lock(signals_mutex);
    signals.emplace_back(instance, id);
}

auto WebRtcEndpoint::Impl::from(gpointer data) -> std::shared_ptr<Impl> {
    return static_cast<std::weak_ptr<Impl>*>(data)->lock();
}

// A new weak reference to hand to a C callback as user data, and its destroy function.
gpointer WebRtcEndpoint::Impl::weak_ref() {
    return new std::weak_ptr<Impl>(weak_from_this());
}

void WebRtcEndpoint::Impl::drop_weak_ref(gpointer data) {
    delete static_cast<std::weak_ptr<Impl>*>(data);
}

// A pad probe whose callback gets this Impl through from(user data).
void WebRtcEndpoint::Impl::probe(GstPad* pad, GstPadProbeType mask, GstPadProbeCallback callback) {
    gst_pad_add_probe(pad, mask, callback, weak_ref(), drop_weak_ref);
}

double WebRtcEndpoint::Impl::mark(const std::string& milestone) {
    std::lock_guard lock(timing_mutex);
    auto it = milestones.find(milestone);
    if (it != milestones.end()) return it->second;
    double t = process_uptime_ms();
    milestones[milestone] = t;
    return t;
}

void WebRtcEndpoint::Impl::fail(ErrorCode code, const std::string& message) {
    if (ended) return;
    KMS_LOG(webrtc, ERROR, "%s", message.c_str());
    if (stopping) return;  // the peer going away while we wind down changes nothing
    events.emit("error", Json{{"code", to_string(code)}, {"message", message}});
    wind_down(CallEnd{false, code, message});
}

void WebRtcEndpoint::Impl::finish(const CallEnd& end) {
    if (ended) return;
    ended = true;
    gate_closed = true;
    open_gates(false);
    emit_timing();
    emit_final_stats();
    emit_summary();
    cancel_timers();
    // An output that never took its end (a muxer blocked writing) can hold the teardown below
    // too: the caller hears of the failure first, so the exit says what went wrong.
    if (!end.clean && end.code == ErrorCode::Io && eos_pending && cb.ended) {
        auto ended_cb = std::move(cb.ended);
        cb.ended = nullptr;
        ended_cb(end);
    }
    if (pipeline) gst_element_set_state(pipeline.get(), GST_STATE_NULL);
    if (cb.ended) cb.ended(end);
}

// ---- building the graph --------------------------------------------------------------------

GstElement* WebRtcEndpoint::Impl::make(const char* factory, const char* name) {
    GstElement* e = gst_element_factory_make(factory, name);
    if (!e)
        throw Error(ErrorCode::MissingPlugin,
                    std::string("cannot create GStreamer element ") + factory);
    return e;
}

// A pipeline error in words a user can act on: which of their inputs or outputs failed and
// what to do, rather than GStreamer's element path.
bool WebRtcEndpoint::Impl::inside(GstObject* src, GstElement* el) {
    return el && (src == GST_OBJECT(el) || gst_object_has_as_ancestor(src, GST_OBJECT(el)));
}

bool WebRtcEndpoint::Impl::is_output(GstObject* src) const {
    return inside(src, output_bin);
}

bool WebRtcEndpoint::Impl::is_input(GstObject* src) {
    if (input && inside(src, input->core().bin.get())) return true;
    std::lock_guard lock(input_mutex);
    return std::any_of(input_bins.begin(), input_bins.end(),
                       [src](GstElement* b) { return inside(src, b); });
}

std::string WebRtcEndpoint::Impl::describe_error(GstObject* src, const GError* e, ErrorCode code) {
    if (is_output(src)) {
        const std::string where =
            opt.output.kind == MediaUri::Kind::Stdio ? "stdout" : opt.output.location;
        return "-o " + opt.output.redacted() + ": cannot write " + where + ": " + e->message +
               (opt.output.kind == MediaUri::Kind::Stdio ? " (did the reader of stdout exit?)"
                                                         : " (is the disk full?)");
    }
    if (is_input(src) && input_source >= 0)
        return "--send " + opt.send[static_cast<size_t>(input_source)].redacted() + ": " +
               e->message +
               (code == ErrorCode::BadInput ? "; is it a media file GStreamer can read?" : "");
    if (code == ErrorCode::BadInput)
        return std::string("the media received from the peer: ") + e->message;
    return std::string(e->message) + " (in " + GST_OBJECT_NAME(src) + "; GST_DEBUG=3 shows more)";
}

// RFC 3550 §6.6: leave the session with an RTCP BYE so the peer ends at once rather than
// after --ice-timeout. rtpsession schedules the BYE when EOS reaches its send_rtp_sink; the
// EOS from our sources does not get through webrtcbin 1.22 to there, so send it directly
// (these pads join the others in send_eos_async()).
void WebRtcEndpoint::Impl::bye_pads(std::vector<gst::PadPtr>& out) {
    for_each_inside("rtpsession", [&out](GstElement* e) {
        if (GstPad* pad = gst_element_get_static_pad(e, "send_rtp_sink")) out.emplace_back(pad);
    });
}

void WebRtcEndpoint::Impl::on_sink_eos() {
    if (eos_pending) --eos_pending;
    if (!stopping || eos_pending) return;
    // The file is complete; a clean stop still leaves the BYE its time on the wire.
    const double left =
        kByeGraceMs -
        std::chrono::duration<double, std::milli>(Clock::now() - stop_started).count();
    if (!pending_end.clean || left <= 0) return finish(pending_end);
    add_timer(static_cast<unsigned>(left), [](Impl& s) {
        s.finish(s.pending_end);
        return false;
    });
}

// Ends the call: an orderly goodbye when clean, and in every case the recording is
// finalised before the end is reported (a failure loses nothing already recorded).
void WebRtcEndpoint::Impl::wind_down(const CallEnd& end) {
    if (ended) return;
    if (stopping) return;
    stopping = true;
    stop_started = Clock::now();
    gate_closed = true;
    open_gates(false);
    pending_end = end;
    // A call stopped before the check above still says what never came, if it had time to.
    if (end.clean && verified &&
        Clock::now() - verified_at > std::chrono::duration<double>(kExpectTracksS / 2))
        check_expected_tracks(false);
    events.emit("stopping", Json{{"clean", end.clean}});
    if (end.clean && channel && data_open) gst_webrtc_data_channel_close(channel.get());
    // A track that was negotiated but never arrived must not keep the file open; then what
    // did arrive ends, and a clean stop says goodbye (only to a peer we ever reached).
    std::vector<gst::PadPtr> pads = close_unfed_mux_pads();
    {
        std::lock_guard lock(rx_mutex);
        for (auto& e : rx_entries) pads.emplace_back(gst_element_get_static_pad(e.queue, "sink"));
    }
    // A failing side says goodbye too, so its peer ends at once rather than after
    // --ice-timeout; but never to a peer whose certificate did not check out.
    const bool bye = ice_connected_once && verified;
    std::vector<gst::PadPtr> bye_to;
    if (bye) bye_pads(bye_to);
    send_eos_async(std::move(pads));
    // The BYE's EOS is waited for (300 ms at most, so a blocked sender cannot hold the stop),
    // so that the grace below starts once rtpsession has it: sent and forgotten, it could
    // reach rtpsession after finish() had already torn the session down, and the peer then
    // learnt of our end only from ICE, seconds later.
    if (!bye_to.empty()) {
        auto done = std::make_shared<std::promise<void>>();
        std::future<void> sent = done->get_future();
        std::thread([keep = gst::ref(pipeline.get()), pads = std::move(bye_to), done] {
            for (auto& pad : pads) gst_pad_send_event(pad.get(), gst_event_new_eos());
            done->set_value();
        }).detach();
        sent.wait_for(std::chrono::milliseconds(300));
    }
    // Before the tracks are known no pad of the muxer exists, and nothing will ever reach it.
    {
        std::lock_guard lock(mux_mutex);
        if (output && mux_pads.empty() && eos_pending) --eos_pending;
    }
    // The RTCP thread sends the BYE within tens of milliseconds; 500 ms leaves it room. A
    // muxer gets up to 2.5 s to write its index: a stop ends within 3 s whatever happens.
    const unsigned wait = eos_pending ? 2500 : bye ? kByeGraceMs : 0;
    add_timer(wait, [](Impl& s) {
        // A file whose muxer never saw its end may be cut short or lack its index: a call that
        // was otherwise clean says so with status 7, never 0.
        if (s.eos_pending && s.pending_end.clean) {
            const std::string why = "-o " + s.opt.output.redacted() +
                                    ": the muxer did not finish the file within 2.5 s of the "
                                    "stop; it may be cut short";
            s.events.emit("error", Json{{"code", to_string(ErrorCode::Io)}, {"message", why}});
            s.pending_end = CallEnd{false, ErrorCode::Io, why};
        }
        s.finish(s.pending_end);
        return false;
    });
}

// EOS into each pad from a thread of its own. A pad whose streaming thread is blocked (a
// muxer waiting for a track that never came, a sender before ICE) holds its stream lock, and
// gst_pad_send_event() would wait for it, with the main loop, signals and timers stuck behind.
// When the pipeline goes to NULL, flushing frees any thread still waiting.
void WebRtcEndpoint::Impl::send_eos_async(std::vector<gst::PadPtr> pads) {
    for (auto& pad : pads) {
        if (!pad) continue;
        std::thread([keep = gst::ref(pipeline.get()), pad = std::move(pad)] {
            gst_pad_send_event(pad.get(), gst_event_new_eos());
        }).detach();
    }
}

// Muxer pads of negotiated tracks that never arrived: closed (the caller sends their EOS),
// so the muxer writes what did arrive. Any thread.
std::vector<gst::PadPtr> WebRtcEndpoint::Impl::close_unfed_mux_pads() {
    std::vector<gst::PadPtr> out;
    std::lock_guard lock(mux_mutex);
    for (auto& [mline, pad] : mux_pads)
        if (!gst_pad_is_linked(pad.get()) && mux_closed.insert(mline).second)
            out.push_back(gst::ref(pad.get()));
    return out;
}

// After the first received track links into the muxer, the others get 2 s to arrive; the
// rest are left out so the file does not wait for them (and the call does not stall).
void WebRtcEndpoint::Impl::arm_mux_deadline() {
    if (mux_deadline_armed) return;
    mux_deadline_armed = true;
    add_timer(2000, [](Impl& s) {
        std::vector<gst::PadPtr> pads = s.close_unfed_mux_pads();
        if (pads.empty()) return false;
        std::string kinds;
        {
            std::lock_guard lock(s.mux_mutex);
            for (const auto& t : s.tracks)
                if (s.mux_closed.count(t.mline))
                    kinds += (kinds.empty() ? "" : " and ") + describe(t);
        }
        s.events.emit("warning", Json{{"message", "the peer sent no " + kinds +
                                                      " within 2 s; recording without it"}});
        KMS_LOG(webrtc, WARNING, "the peer sent no %s; recording without it", kinds.c_str());
        if (s.cb.warning) s.cb.warning("the peer sent no " + kinds + "; recording without it");
        s.send_eos_async(std::move(pads));
        return false;
    });
}

// The caller asked to stop; asking again while winding down stops at once.
void WebRtcEndpoint::Impl::stop_graceful() {
    // Only the caller's own second stop cuts the wind-down short; one that comes while the
    // peer's goodbye or the input's end winds the call down lets the muxer finish.
    if (stop_asked) return finish(pending_end);
    stop_asked = true;
    if (stopping) return;
    if (ice_connected_once) return wind_down(CallEnd{});
    // A call that never connected did not happen, however it was stopped: scripts must not
    // read success from it.
    const std::string why = remote_applied ? "stopped before ICE connected"
                                           : "stopped before the peer's description came";
    events.emit("error", Json{{"code", to_string(ErrorCode::Network)}, {"message", why}});
    wind_down(CallEnd{false, ErrorCode::Network, why});
}

}  // namespace kms
