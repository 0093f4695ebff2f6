// Pipeline, Element and connect(): the graph every tool builds (architecture.md, "Media
// elements").
#include "kms/pipeline.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "core/log.hpp"
#include "gst/handles.hpp"
#include "gst/tsan.hpp"
#include "kms/loop.hpp"
#include "kms/runtime.hpp"
#include "media/transcoder.hpp"
#include "pipeline/element.hpp"

namespace kms {

// ---- Pipeline --------------------------------------------------------------------------------

struct Pipeline::Impl : std::enable_shared_from_this<Pipeline::Impl> {
    Error error_of(GstMessage* msg, bool detail) const;
    Callbacks cb;
    gst::ElementPtr pipeline;
    guint bus_watch = 0;
    std::vector<std::shared_ptr<Element::Core>> elements;
    mutable std::mutex links_mutex;
    std::vector<LinkInfo> links;
    bool started = false;
    bool stopping = false;
    std::atomic<unsigned> streams_wait_ms{2500};  // see hold_until_all_exposed
    // Whether what is held may go (hold_until_all_exposed). Shared with the holds, not reached
    // through Impl: a hold released on a streaming thread must not keep Impl alive there.
    struct Holds {
        std::mutex mutex;
        bool failed = false;  // a stream could not be linked: the run is failing
    };
    std::shared_ptr<Holds> holds = std::make_shared<Holds>();
    bool done = false;
    std::set<const Element::Core*> sinks_ended;  // sinks whose bin posted its end of stream

    // A linked stream's buffers, watched from its first to its end (report_flow()).
    struct Flow {
        LinkInfo info;
        gst::PadPtr pad;                           // where its buffers go out
        std::atomic<gint64> last{0};               // monotonic µs of the last buffer; 0: none yet
        std::atomic<bool> stalled{false};          // reported stalled, no buffer since
        std::atomic<bool> ended{false};            // its end of stream went by
        bool watched = false;                      // stalls or a media limit: every buffer counts
        GstClockTime limit = GST_CLOCK_TIME_NONE;  // the pipeline's media_limit
        GstSegment segment;                        // its last segment (streaming thread only)
        std::atomic<bool> past_limit{false};  // carried media_limit's worth; the rest is dropped
    };
    std::vector<std::shared_ptr<Flow>> flows;  // under links_mutex: streams link on any thread
    gint64 stall_after_us = 0;
    GstClockTime media_limit = GST_CLOCK_TIME_NONE;  // see set_media_limit()
    std::function<void()> limit_reached;             // main thread
    bool limit_fired = false;                        // main thread
    bool finish_files_on_error = false;
    bool media_flowed() const {
        std::lock_guard lock(links_mutex);
        return std::any_of(flows.begin(), flows.end(),
                           [](const auto& f) { return f->last.load(std::memory_order_relaxed); });
    }
    guint stall_timer = 0;
    void check_stalls();
    void check_limit();
    static bool past_limit(const Flow& f, GstPadProbeInfo* info);

    // Whether the pipeline's own end of stream cannot be waited for: an element in it never
    // ends (webrtcbin), so the end is when every sink has ended.
    bool ends_by_sinks() const {
        return std::any_of(elements.begin(), elements.end(),
                           [](const auto& e) { return !e->ends_with_eos(); });
    }
    bool has_sinks() const {
        return std::any_of(elements.begin(), elements.end(),
                           [](const auto& e) { return e->is_sink(); });
    }
    void finish_ended() {
        if (done) return;
        done = true;
        for (auto& e : elements) e->on_ended();
        shut_down();
        if (cb.ended) cb.ended();
    }
    bool all_sinks_ended() const {
        return std::all_of(elements.begin(), elements.end(), [this](const auto& e) {
            return !e->is_sink() || sinks_ended.count(e.get());
        });
    }
    // A bin's end of stream, forwarded (message-forward): the end when it was the last sink's.
    void on_forwarded_eos(GstObject* src) {
        for (auto& e : elements)
            if (e->is_sink() && GST_OBJECT(e->bin.get()) == src) sinks_ended.insert(e.get());
        if (ends_by_sinks() && has_sinks() && all_sinks_ended()) finish_ended();
    }

    ~Impl() {
        if (bus_watch) g_source_remove(bus_watch);
        if (stall_timer) g_source_remove(stall_timer);
        if (pipeline) shut_down();
    }

    // The pipeline to NULL. Should that fail, the elements that are down already are left out
    // and it is tried again: a bin going down through READY brings a child in NULL up to
    // READY, and a file sink whose file could not be opened (splitmuxsink's, a segment in a
    // folder it cannot make) fails that again, so the pipeline would stay PAUSED, and the
    // bins after that sink PLAYING, and be disposed so. (Not before the first try: a stream
    // being linked meanwhile has elements in NULL that are about to come up.)
    void shut_down() {
        if (gst_element_set_state(pipeline.get(), GST_STATE_NULL) != GST_STATE_CHANGE_FAILURE)
            return;
        GstIterator* it = gst_bin_iterate_recurse(GST_BIN(pipeline.get()));
        GValue item = G_VALUE_INIT;
        while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
            auto* e = GST_ELEMENT(g_value_get_object(&item));
            GST_OBJECT_LOCK(e);
            // (Its parent's failed attempt leaves READY pending on it.)
            const bool down = GST_STATE(e) == GST_STATE_NULL && !GST_IS_BIN(e) &&
                              GST_STATE_TARGET(e) != GST_STATE_PLAYING;
            GST_OBJECT_UNLOCK(e);
            if (down) gst_element_set_locked_state(e, TRUE);
            g_value_reset(&item);
        }
        g_value_unset(&item);
        gst_iterator_free(it);
        gst_element_set_state(pipeline.get(), GST_STATE_NULL);
    }

    void add(const std::shared_ptr<Element::Core>& core) {
        for (auto& e : elements)
            if (e == core) return;
        elements.push_back(core);
        // A bin's name is unique in its pipeline: a second source becomes source_1.
        for (unsigned n = 1; has_child(GST_OBJECT_NAME(core->bin.get())); ++n)
            gst_object_set_name(GST_OBJECT(core->bin.get()),
                                (core->name + "_" + std::to_string(n)).c_str());
        // Not floating (the core holds it): gst_bin_add takes a reference of its own.
        gst_bin_add(GST_BIN(pipeline.get()), core->bin.get());
        if (started) {
            core->prepare();
            gst_element_sync_state_with_parent(core->bin.get());
        }
    }

    bool has_child(const char* name) {
        GST_OBJECT_LOCK(pipeline.get());
        bool found = false;
        for (GList* l = GST_BIN_CHILDREN(pipeline.get()); l && !found; l = l->next)
            found = g_strcmp0(GST_OBJECT_NAME(l->data), name) == 0;
        GST_OBJECT_UNLOCK(pipeline.get());
        return found;
    }

    // Any thread: a demuxer's pad-added, or the main thread for streams already there.
    void link_stream(Element::Core& from, Element::Core& to, GstPad* pad, const std::string& kind,
                     Transcode transcode);
    void report_flow(GstPad* pad, const LinkInfo& info);
    void hold_until_all_exposed(Element::Core& from, GstPad* pad);
    // Where a stream nobody takes goes: an unlinked pad would stop its whole source.
    void discard(GstPad* pad) {
        GstElement* sink = make_bin("fakesink sync=false async=false");
        gst_bin_add(GST_BIN(pipeline.get()), sink);
        gst_element_sync_state_with_parent(sink);
        gst::PadPtr in(gst_element_get_static_pad(sink, "sink"));
        gst_pad_link(pad, in.get());
    }
    void warn(const std::string& message) {
        std::weak_ptr<Impl> weak = weak_from_this();
        post_to_main([weak, message] {
            if (auto self = weak.lock(); self && self->cb.warning) self->cb.warning(message);
        });
    }
    void on_bus(GstMessage* msg);
    void finish_failed(const Error& e) {
        if (done) return;
        done = true;
        shut_down();
        if (cb.failed) cb.failed(e);
    }
};

// The factories of a chain, from its sink pad to its src pad, and the media type its last
// element makes.
static std::vector<std::string> chain_factories(GstElement* chain, std::string& makes) {
    std::vector<std::string> out;
    gst::PadPtr in(gst_element_get_static_pad(chain, "sink"));
    gst::PadPtr at(in ? gst_ghost_pad_get_target(GST_GHOST_PAD(in.get())) : nullptr);
    while (at) {
        gst::ElementPtr e(gst_pad_get_parent_element(at.get()));
        if (!e || GST_ELEMENT(e.get()) == chain) break;
        if (GstElementFactory* f = gst_element_get_factory(e.get()))
            out.push_back(GST_OBJECT_NAME(f));
        gst::PadPtr src(gst_element_get_static_pad(e.get(), "src"));
        if (src) makes = media_of(gst::CapsPtr(gst_pad_get_pad_template_caps(src.get())).get());
        at.reset(src ? gst_pad_get_peer(src.get()) : nullptr);
    }
    return out;
}

void Pipeline::Impl::link_stream(Element::Core& from, Element::Core& to, GstPad* pad,
                                 const std::string& kind, Transcode transcode) {
    gst::CapsPtr caps = caps_of(pad);
    const std::string media = media_of(caps.get());
    if (!to.takes_kind(kind)) {
        const std::string why = to.refusal(kind);
        warn(from.name + "'s " + kind + " (" + media +
             ") is left out: " + (why.empty() ? to.name + " takes no " + kind : why));
        discard(pad);
        return;
    }
    try {
        const bool raw = media == "video/x-raw" || media == "audio/x-raw";
        bool as_is = to.takes_as_is(caps.get());
        if (!as_is && !raw && transcode == Transcode::Never)
            throw Error(ErrorCode::Negotiation, from.name + "'s " + kind + " (" + media +
                                                    ") does not fit " + to.name +
                                                    " without transcoding");
        if (as_is && !raw && transcode == Transcode::Force && !to.encoder(kind).empty())
            as_is = false;
        const media::Chain chain = media::chain_for(caps.get(), as_is, to.encoder(kind));
        // Passthrough needs no element of its own unless a parser must convert the stream
        // format: the source's queue already gives the stream a thread (each element less is a
        // thread hand-off less per buffer).
        GstElement* bin = chain.description.empty() ? nullptr : make_bin(chain.description);
        if (bin) gst_bin_add(GST_BIN(pipeline.get()), bin);
        // What will reach b's pad: the stream as it is, or what the chain's encoder makes.
        std::string makes;
        std::vector<std::string> factories =
            bin ? chain_factories(bin, makes) : std::vector<std::string>{};
        const std::string arrives = chain.passthrough || makes.empty() ? media : makes;
        GstPad* sink = to.request_sink_from(from, kind, caps.get(), arrives);
        if (!sink) {
            if (bin) gst_bin_remove(GST_BIN(pipeline.get()), bin);
            const std::string why = to.refusal(kind);
            warn(from.name + "'s " + kind +
                 " is left out: " + (why.empty() ? to.name + " takes no more " + kind : why));
            discard(pad);
            return;
        }
        gst::PadPtr out(bin ? gst_element_get_static_pad(bin, "src") : gst::ref(pad).release());
        gst::PadPtr in(bin ? gst_element_get_static_pad(bin, "sink") : nullptr);
        if (GstPadLinkReturn r = gst_pad_link(out.get(), sink); r != GST_PAD_LINK_OK)
            throw Error(ErrorCode::Runtime, to.name + " refused " + from.name + "'s " + kind +
                                                " (" + gst_pad_link_get_name(r) + ")");
        if (bin) {
            gst_element_sync_state_with_parent(bin);
            if (GstPadLinkReturn r = gst_pad_link(pad, in.get()); r != GST_PAD_LINK_OK)
                throw Error(ErrorCode::Runtime, "cannot link " + from.name + "'s " + kind + " (" +
                                                    gst_pad_link_get_name(r) + ")");
        }
        LinkInfo info{kind, media, arrives, chain.passthrough, factories};
        {
            std::lock_guard lock(links_mutex);
            links.push_back(info);
        }
        report_flow(out.get(), info);
        if (!from.all_exposed()) hold_until_all_exposed(from, out.get());
        std::weak_ptr<Impl> weak = weak_from_this();
        post_to_main([weak, info] {
            if (auto self = weak.lock(); self && self->cb.linked) self->cb.linked(info);
        });
        KMS_LOG(pipeline, INFO, "%s -> %s: %s %s", from.name.c_str(), to.name.c_str(), kind.c_str(),
                chain.passthrough ? "passthrough" : chain.description.c_str());
        if (!chain.passthrough && !raw)
            warn("transcoding " + kind + " (" + media + ") for " + to.name);
    } catch (const Error& e) {
        {
            // Before the source's all-exposed can release what is held.
            std::lock_guard lock(holds->mutex);
            holds->failed = true;
        }
        discard(pad);
        std::weak_ptr<Impl> weak = weak_from_this();
        Error copy = e;
        post_to_main([weak, copy] {
            if (auto self = weak.lock()) self->finish_failed(copy);
        });
    }
}

// A muxer takes no new pad once it has started writing, and it starts with the first buffer
// of every pad it has. So nothing goes in until the source has shown all its streams (an RTSP
// camera's video appears after its first key frame, long after its audio), or, for a source
// that never says, for streams_wait_ms (2.5 s unless set_streams_wait() said). The stream's
// queue in the Source (2 s), or an RTP stream's jitter buffer, holds what comes meanwhile.
// A stream that could not be linked fails the run: what is held then stays held, or a file
// the run never really began would get its header and the other streams' first packets
// (kms-filter with a crop too big, its video refused after its audio was linked).

void Pipeline::Impl::hold_until_all_exposed(Element::Core& from, GstPad* pad) {
    struct Hold {
        gst::PadPtr pad;
        std::shared_ptr<Holds> holds;
        gulong id = 0;  // holds->mutex
        void release() {
            // Looked at and acted on under one lock, so a failure cannot come in between.
            std::lock_guard lock(holds->mutex);
            if (holds->failed || !id) return;
            KMS_LOG(pipeline, DEBUG, "releasing the hold on %s", GST_OBJECT_NAME(pad.get()));
            gst_pad_remove_probe(pad.get(), id);
            id = 0;
        }
    };
    auto hold = std::make_shared<Hold>();
    hold->pad = gst::ref(pad);
    hold->holds = holds;  // (id is set before the hold is shared)
    hold->id = gst_pad_add_probe(
        pad, GST_PAD_PROBE_TYPE_BLOCK_DOWNSTREAM,
        [](GstPad*, GstPadProbeInfo*, gpointer) { return GST_PAD_PROBE_OK; }, nullptr, nullptr);
    KMS_LOG(pipeline, DEBUG, "holding %s until %s shows all its streams", GST_OBJECT_NAME(pad),
            from.name.c_str());
    from.when_all_exposed([hold] { hold->release(); });
    const unsigned wait_ms = streams_wait_ms;
    post_to_main([hold, wait_ms] {
        g_timeout_add_full(
            G_PRIORITY_DEFAULT, wait_ms,
            [](gpointer d) -> gboolean {
                auto* h = static_cast<std::shared_ptr<Hold>*>(d);
                (*h)->release();
                return G_SOURCE_REMOVE;
            },
            new std::shared_ptr<Hold>(hold),
            [](gpointer d) { delete static_cast<std::shared_ptr<Hold>*>(d); });
    });
}

// Buffers out of a link's chain: the first says the stream flows, and, when stalls are
// looked for, so does the first after a stall (one store a buffer; check_stalls() reads the
// times once a second). Otherwise the probe goes with the first buffer.
void Pipeline::Impl::report_flow(GstPad* pad, const LinkInfo& link_info) {
    struct Ctx {
        std::weak_ptr<Impl> self;
        std::shared_ptr<Flow> flow;
    };
    auto flow = std::make_shared<Flow>();
    flow->info = link_info;
    flow->pad = gst::ref(pad);
    flow->watched = stall_after_us > 0 || GST_CLOCK_TIME_IS_VALID(media_limit);
    flow->limit = media_limit;
    gst_segment_init(&flow->segment, GST_FORMAT_TIME);
    {
        std::lock_guard lock(links_mutex);
        flows.push_back(flow);
    }
    gst_pad_add_probe(
        pad,
        static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST |
                                     GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM |
                                     GST_PAD_PROBE_TYPE_EVENT_FLUSH),
        [](GstPad* out, GstPadProbeInfo* info, gpointer d) -> GstPadProbeReturn {
            auto* c = static_cast<Ctx*>(d);
            Flow& f = *c->flow;
            if (info->type &
                (GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_EVENT_FLUSH)) {
                const GstEventType t = GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info));
                if (t == GST_EVENT_EOS) {
                    f.ended.store(true, std::memory_order_relaxed);
                    // A stream cut upstream (a filter's second link) ends here, not by its
                    // own limit: check again, or the stop would wait for a race.
                    if (GST_CLOCK_TIME_IS_VALID(f.limit))
                        post_to_main([weak = c->self] {
                            if (auto s = weak.lock()) s->check_limit();
                        });
                }
                if (t == GST_EVENT_FLUSH_STOP) f.ended.store(false, std::memory_order_relaxed);
                if (t == GST_EVENT_SEGMENT)
                    gst_event_copy_segment(GST_PAD_PROBE_INFO_EVENT(info), &f.segment);
                return GST_PAD_PROBE_OK;
            }
            if (GST_CLOCK_TIME_IS_VALID(f.limit) &&
                (f.past_limit.load(std::memory_order_relaxed) || past_limit(f, info))) {
                // The stream ends here: its end of stream lets a muxer finish it while the
                // others catch up (one held back would block them), and upstream hears EOS,
                // so a file is not read (or decoded) to its end for nothing.
                if (!f.past_limit.exchange(true)) {
                    gst_pad_push_event(out, gst_event_new_eos());
                    post_to_main([weak = c->self] {
                        if (auto s = weak.lock()) s->check_limit();
                    });
                }
                return gst::answer_eos(info);
            }
            const gint64 before =
                f.last.exchange(g_get_monotonic_time(), std::memory_order_relaxed);
            const bool resumed = f.stalled.load(std::memory_order_relaxed) &&
                                 f.stalled.exchange(false, std::memory_order_relaxed);
            if (before == 0 || resumed) {
                std::weak_ptr<Impl> weak = c->self;
                LinkInfo link = f.info;
                post_to_main([weak, link] {
                    if (auto self = weak.lock(); self && self->cb.flowing) self->cb.flowing(link);
                });
            }
            // Unwatched, the first buffer is all there is to know.
            return f.watched ? GST_PAD_PROBE_OK : GST_PAD_PROBE_REMOVE;
        },
        new Ctx{weak_from_this(), flow}, [](gpointer d) { delete static_cast<Ctx*>(d); });
}

// Streaming thread: whether this buffer (or list) starts at or after the media limit, in the
// stream's running time (its decode time when it has one: presentation times of B-frames go
// back and forth).
bool Pipeline::Impl::past_limit(const Flow& f, GstPadProbeInfo* info) {
    if (f.segment.format != GST_FORMAT_TIME) return false;
    GstBuffer* b = (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST)
                       ? gst_buffer_list_get(GST_PAD_PROBE_INFO_BUFFER_LIST(info), 0)
                       : GST_PAD_PROBE_INFO_BUFFER(info);
    if (!b) return false;
    const GstClockTime t = GST_BUFFER_DTS_IS_VALID(b) ? GST_BUFFER_DTS(b) : GST_BUFFER_PTS(b);
    if (!GST_CLOCK_TIME_IS_VALID(t)) return false;
    const GstClockTime rt = gst_segment_to_running_time(&f.segment, GST_FORMAT_TIME, t);
    return GST_CLOCK_TIME_IS_VALID(rt) && rt >= f.limit;
}

// Main thread: every stream that has not ended has carried the media limit's worth; once.
void Pipeline::Impl::check_limit() {
    if (limit_fired || stopping || done) return;
    {
        std::lock_guard lock(links_mutex);
        for (auto& f : flows)
            if (!f->past_limit.load(std::memory_order_relaxed) &&
                !f->ended.load(std::memory_order_relaxed))
                return;
    }
    limit_fired = true;
    if (limit_reached) limit_reached();
}

// Main thread, once a second: a stream that flowed, has not ended and has had no buffer for
// stall_after_us is stalled. GStreamer says nothing of it: rtspsrc drops its UDP timeout once
// streaming ("handled by the session manager"), and the jitter buffer just waits.
void Pipeline::Impl::check_stalls() {
    if (stopping || done) return;
    const gint64 now = g_get_monotonic_time();
    std::vector<std::pair<LinkInfo, double>> found;
    {
        std::lock_guard lock(links_mutex);
        for (auto& f : flows) {
            // Held on purpose (hold_until_all_exposed: a muxer waits for every stream) is not
            // stalled: its clock starts when it is let go.
            if (f->last.load(std::memory_order_relaxed) && gst_pad_is_blocking(f->pad.get()))
                f->last.store(now, std::memory_order_relaxed);
            const gint64 last = f->last.load(std::memory_order_relaxed);
            if (!last || f->ended.load(std::memory_order_relaxed) ||
                f->stalled.load(std::memory_order_relaxed) || now - last < stall_after_us)
                continue;
            f->stalled.store(true, std::memory_order_relaxed);
            found.emplace_back(f->info, double(now - last) / G_USEC_PER_SEC);
        }
    }
    for (auto& [link, seconds] : found)
        if (cb.stalled) cb.stalled(link, seconds);
}

// An ERROR message in the user's words: the element it came from describes it. With detail,
// the last line of GStreamer's debug text too ("bind failed: ... Address already in use"),
// which says more than the message when an element cannot even start.
Error Pipeline::Impl::error_of(GstMessage* msg, bool detail) const {
    const BusProblem p = parse_problem(msg);
    const GError* e = p.error.get();
    gst::GCharPtr path(gst_object_get_path_string(GST_MESSAGE_SRC(msg)));
    KMS_LOG(pipeline, ERROR, "%s: %s (%s)", path.get(), e->message, p.detail());
    ErrorCode code = error_code_of(e);
    std::string text =
        std::string(e->message) + " (in " + GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)) + ")";
    for (auto& el : elements)
        if (gst_object_has_as_ancestor(GST_MESSAGE_SRC(msg), GST_OBJECT(el->bin.get()))) {
            code = el->classify(e, code);
            text = el->describe_error(e, code);
        }
    const std::string debug = p.detail();
    if (detail && !debug.empty()) {
        while (!text.empty() && text.back() == '.') text.pop_back();
        text += " (" + debug.substr(debug.rfind('\n') + 1) + ")";
    }
    return Error(code, text);
}

void Pipeline::Impl::on_bus(GstMessage* msg) {
    switch (GST_MESSAGE_TYPE(msg)) {
        case GST_MESSAGE_EOS:
            finish_ended();
            break;
        case GST_MESSAGE_ERROR: {
            bool in_sink = false;
            for (auto& el : elements)
                if (gst_object_has_as_ancestor(GST_MESSAGE_SRC(msg), GST_OBJECT(el->bin.get()))) {
                    if (el->handle_error(msg)) return;
                    in_sink = in_sink || el->is_sink();
                }
            // With an element that ends its own way (a call says goodbye first), or when asked
            // once media has come, an error outside the sinks leaves the pipeline running: the
            // caller ends the call, then stop() finishes the files.
            if (!in_sink && !done &&
                (ends_by_sinks() || (finish_files_on_error && media_flowed()))) {
                if (cb.failed) cb.failed(error_of(msg, false));
                return;
            }
            finish_failed(error_of(msg, false));
            break;
        }
        case GST_MESSAGE_ELEMENT:
            if (const GstStructure* st = gst_message_get_structure(msg);
                st && gst_structure_has_name(st, "GstBinForwarded")) {
                GstMessage* inner = nullptr;
                gst_structure_get(st, "message", GST_TYPE_MESSAGE, &inner, nullptr);
                if (inner && GST_MESSAGE_TYPE(inner) == GST_MESSAGE_EOS)
                    on_forwarded_eos(GST_MESSAGE_SRC(inner));
                if (inner) {
                    tsan::hand_back(GST_MINI_OBJECT(inner));
                    gst_message_unref(inner);
                }
                break;
            }
            for (auto& el : elements)
                if (gst_object_has_as_ancestor(GST_MESSAGE_SRC(msg), GST_OBJECT(el->bin.get())))
                    el->on_element_message(msg);
            break;
        default:
            on_routine_message(msg, pipeline.get(), log::pipeline());
            break;
    }
}

Pipeline::Pipeline(const std::string& name, Callbacks callbacks) : impl_(std::make_shared<Impl>()) {
    init();
    impl_->cb = std::move(callbacks);
    impl_->pipeline.reset(GST_ELEMENT(gst_object_ref_sink(gst_pipeline_new(name.c_str()))));
    // Each element's end of stream comes to the bus too, so that the end can be when every
    // sink has ended (see ends_by_sinks()).
    g_object_set(impl_->pipeline.get(), "message-forward", TRUE, nullptr);
    gst::BusPtr bus(gst_pipeline_get_bus(GST_PIPELINE(impl_->pipeline.get())));
    auto* weak = new std::weak_ptr<Impl>(impl_);
    impl_->bus_watch = gst_bus_add_watch_full(
        bus.get(), G_PRIORITY_DEFAULT,
        [](GstBus*, GstMessage* msg, gpointer d) -> gboolean {
            if (auto self = static_cast<std::weak_ptr<Impl>*>(d)->lock()) self->on_bus(msg);
            tsan::hand_back(GST_MINI_OBJECT(msg));
            return G_SOURCE_CONTINUE;
        },
        weak, [](gpointer d) { delete static_cast<std::weak_ptr<Impl>*>(d); });
}

Pipeline::~Pipeline() = default;

void Pipeline::connect(Element& from, Element& to, Transcode transcode) {
    auto a = from.core().shared_from_this();
    auto b = to.core().shared_from_this();
    bool any = a->known.empty();
    for (const auto& s : a->known) any = any || b->takes_kind(s.kind);
    if (!any)
        throw Error(ErrorCode::InvalidArgument,
                    to.name() + " takes none of what " + from.name() + " gives");
    impl_->add(a);
    impl_->add(b);
    b->upstream_connected(*a);
    std::weak_ptr<Impl> weak = impl_;
    std::weak_ptr<Element::Core> weak_b = b;
    Element::Core* raw_a = a.get();
    a->listen([weak, weak_b, raw_a, transcode](GstPad* pad, const std::string& kind) {
        auto self = weak.lock();
        auto down = weak_b.lock();
        if (self && down) self->link_stream(*raw_a, *down, pad, kind, transcode);
    });
    a->when_all_exposed([weak_b] {
        if (auto down = weak_b.lock()) down->upstream_all_exposed();
    });
}

void Pipeline::set_finish_files_on_error(bool on) {
    impl_->finish_files_on_error = on;
}

void Pipeline::set_stall_after(double seconds) {
    impl_->stall_after_us = static_cast<gint64>(seconds * G_USEC_PER_SEC);
}

void Pipeline::set_media_limit(double seconds, std::function<void()> reached) {
    impl_->media_limit = static_cast<GstClockTime>(seconds * GST_SECOND);
    impl_->limit_reached = std::move(reached);
}

void Pipeline::start() {
    for (auto& e : impl_->elements) e->prepare();
    impl_->started = true;
    if (impl_->stall_after_us > 0 && !impl_->stall_timer)
        impl_->stall_timer = g_timeout_add_seconds_full(
            G_PRIORITY_DEFAULT, 1,
            [](gpointer d) -> gboolean {
                if (auto self = static_cast<std::weak_ptr<Impl>*>(d)->lock()) self->check_stalls();
                return G_SOURCE_CONTINUE;
            },
            new std::weak_ptr<Impl>(impl_),
            [](gpointer d) { delete static_cast<std::weak_ptr<Impl>*>(d); });
    if (gst_element_set_state(impl_->pipeline.get(), GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE)
        return;
    // The element that failed has posted why (a port in use, a device missing).
    gst::BusPtr bus(gst_pipeline_get_bus(GST_PIPELINE(impl_->pipeline.get())));
    if (GstMessage* msg = gst_bus_pop_filtered(bus.get(), GST_MESSAGE_ERROR)) {
        Error e = impl_->error_of(msg, true);
        gst_message_unref(msg);
        throw e;
    }
    throw Error(ErrorCode::Runtime,
                "the pipeline would not start (run with GST_DEBUG=3 for details)");
}

void Pipeline::stop() {
    if (impl_->done) return;
    if (impl_->stopping || !impl_->started) {
        // The second stop: at once.
        impl_->done = true;
        impl_->shut_down();
        if (impl_->cb.ended) impl_->cb.ended();
        return;
    }
    impl_->stopping = true;
    if (impl_->ends_by_sinks()) {
        // A sink nothing was ever linked to (a call that received nothing) has nothing to end.
        for (auto& e : impl_->elements)
            if (e->is_sink()) {
                GST_OBJECT_LOCK(e->bin.get());
                const bool unlinked = e->bin->numsinkpads == 0;
                GST_OBJECT_UNLOCK(e->bin.get());
                if (unlinked) impl_->sinks_ended.insert(e.get());
            }
        if (impl_->all_sinks_ended()) return impl_->finish_ended();
    }
    for (auto& e : impl_->elements) {
        // On GStreamer's own thread pool: an end of stream waits for a full queue to drain.
        auto* keep = new std::shared_ptr<Element::Core>(e);
        tsan::release(keep);
        gst_element_call_async(
            e->bin.get(),
            [](GstElement*, gpointer d) {
                tsan::acquire(d);
                (*static_cast<std::shared_ptr<Element::Core>*>(d))->send_eos();
            },
            keep,
            [](gpointer d) {
                tsan::acquire(d);
                delete static_cast<std::shared_ptr<Element::Core>*>(d);
            });
    }
}

void Pipeline::set_streams_wait(double seconds) {
    impl_->streams_wait_ms = static_cast<unsigned>(std::max(0.0, seconds) * 1000);
}

void Pipeline::add(Element& element) {
    impl_->add(element.core().shared_from_this());
}

bool Pipeline::running() const {
    return impl_->started && !impl_->done;
}

std::vector<LinkInfo> Pipeline::links() const {
    std::lock_guard lock(impl_->links_mutex);
    return impl_->links;
}

}  // namespace kms
