// WebRtcEndpoint::Impl: Plumbing (posting to the main context, timers, signals, probes), errors,
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
    // What was given downstream may still be waiting for the rest of the streams.
    give_all();
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

// An error inside the endpoint (Pipeline's bus, main loop): the call ends, saying goodbye,
// and the caller then finishes what was received.
void WebRtcEndpoint::Impl::on_error(GstMessage* msg) {
    const BusProblem problem = parse_problem(msg);
    const gst::GErrorPtr& e = problem.error;
    gst::GCharPtr src_name(gst_object_get_path_string(GST_MESSAGE_SRC(msg)));
    KMS_LOG(webrtc, ERROR, "%s: %s (%s)", src_name.get(), e->message, problem.detail());
    if (stopping || ended) return;  // the call is already ending; nothing more is lost
    GST_DEBUG_BIN_TO_DOT_FILE_WITH_TS(GST_BIN(bin.get()), GST_DEBUG_GRAPH_SHOW_ALL, "kms-error");
    const ErrorCode code = error_code_of(e.get());
    fail(code, describe_error(GST_MESSAGE_SRC(msg), e.get(), code));
}

// The caller's pipeline failed outside the endpoint (a file to send, a file to write): the call
// ends with that error, saying goodbye if it still can. Already winding down, the error replaces
// a clean end.
void WebRtcEndpoint::Impl::abort(const Error& e) {
    if (ended) return;
    events.emit("error", Json{{"code", to_string(e.code())}, {"message", e.what()}});
    const CallEnd end{false, e.code(), e.what()};
    if (!stopping) return wind_down(end);
    if (pending_end.clean) pending_end = end;
}

bool WebRtcEndpoint::Impl::inside(GstObject* src, GstElement* el) {
    return src == GST_OBJECT(el) || gst_object_has_as_ancestor(src, GST_OBJECT(el));
}

// An error in words a user can act on, rather than GStreamer's element path.
std::string WebRtcEndpoint::Impl::describe_error(GstObject* src, const GError* e, ErrorCode code) {
    for (GstElement* chain : feed_chains)
        if (inside(src, chain))
            return std::string("cannot encode what --send gives for the call: ") + e->message;
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

// Ends the call: an orderly goodbye when clean (a failing side says goodbye too). Then ended
// fires, and the caller stops its pipeline, which finishes what was received (a failure loses
// nothing already recorded).
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
    // Streams that have not come will not: downstream may start with what did.
    give_all();
    // A failing side says goodbye too, so its peer ends at once rather than after
    // --ice-timeout; but never to a peer whose certificate did not check out.
    const bool bye = ice_connected_once && verified;
    std::vector<gst::PadPtr> bye_to;
    if (bye) bye_pads(bye_to);
    // The BYE's EOS is waited for (300 ms at most, so a blocked sender cannot hold the stop),
    // so that the grace below starts once rtpsession has it: sent and forgotten, it could
    // reach rtpsession after finish() had already torn the session down, and the peer then
    // learnt of our end only from ICE, seconds later.
    if (!bye_to.empty()) {
        auto done = std::make_shared<std::promise<void>>();
        std::future<void> sent = done->get_future();
        std::thread([keep = gst::ref(bin.get()), pads = std::move(bye_to), done] {
            for (auto& pad : pads) gst_pad_send_event(pad.get(), gst_event_new_eos());
            done->set_value();
        }).detach();
        sent.wait_for(std::chrono::milliseconds(300));
    }
    // The RTCP thread sends the BYE within tens of milliseconds; 500 ms leaves it room.
    add_timer(bye ? kByeGraceMs : 0, [](Impl& s) {
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
        std::thread([keep = gst::ref(bin.get()), pad = std::move(pad)] {
            gst_pad_send_event(pad.get(), gst_event_new_eos());
        }).detach();
    }
}

// What was received ends: EOS into each received stream's entry, so that what it was given to
// finishes (Pipeline::stop(), a GStreamer thread).
void WebRtcEndpoint::Impl::end_received() {
    std::vector<gst::PadPtr> pads;
    {
        std::lock_guard lock(rx_mutex);
        for (auto& e : rx_entries) pads.emplace_back(gst_element_get_static_pad(e.queue, "sink"));
    }
    send_eos_async(std::move(pads));
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
