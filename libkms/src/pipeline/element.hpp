// Element::Core: what the Pipeline needs of every element, private to libkms. An element is a
// GstBin with a ghost src pad per stream it gives ("video", "audio"), made as the streams
// appear, and sink pads made on request, one per stream it takes.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gst/gst.h>

#include "gst/handles.hpp"
#include "kms/pipeline.hpp"

namespace kms {

struct Element::Core : std::enable_shared_from_this<Element::Core> {
    explicit Core(std::string element_name);
    virtual ~Core();
    Core(const Core&) = delete;
    Core& operator=(const Core&) = delete;

    std::string name;
    gst::ElementPtr bin;  // the GstBin; the pipeline holds a reference of its own once added

    // ---- what the element gives downstream ----------------------------------------------
    std::vector<StreamInfo> known;  // main thread; streams() reads it

    /// Makes target (a src pad inside the bin) a src pad of the bin for one stream of kind,
    /// and hands it to whoever connect()ed this element. Any thread: a demuxer's streams
    /// appear on its streaming thread, which pushes as soon as the handler returns, so the
    /// listener links at once.
    void expose(GstPad* target, const std::string& kind);
    using PadListener = std::function<void(GstPad* pad, const std::string& kind)>;
    /// Called when the element has exposed every stream it will (a demuxer's no-more-pads),
    /// on the thread that found out. Listeners add themselves with when_all_exposed().
    void when_all_exposed(std::function<void()> fn);
    /// True once announce_all_exposed() ran.
    bool all_exposed() const { return all_exposed_; }
    /// True once something listens for this element's streams (it is connected downstream).
    bool listened() const;
    /// Sets the one listener and calls it for every stream exposed before.
    void listen(PadListener fn);

    /// Called by Pipeline::start() before the pipeline plays: elements held out join here.
    virtual void prepare() {}
    /// Whether the bin posts an end of stream once its streams have ended. A WebRtcEndpoint's
    /// does not (webrtcbin's network sinks never take one): with such an element in it, a
    /// pipeline has ended when its sinks have, not when every sink inside it has.
    virtual bool ends_with_eos() const { return true; }
    /// A sink (file, stdout, null:, display:): where a pipeline's streams end.
    virtual bool is_sink() const { return false; }
    /// A source whose streams end by themselves (a file, stdin), unlike a live one.
    virtual bool finite() const { return false; }
    /// An ERROR message from inside the bin that the element deals with itself (true): a
    /// call ends in its own way, saying goodbye to its peer. Main loop.
    virtual bool handle_error(GstMessage* /*msg*/) { return false; }
    /// Called once by Pipeline::stop(): sends an end of stream into each stream the element
    /// makes. Runs on a GStreamer thread of its own (a full queue may hold it). Sources only.
    virtual void send_eos() {}

    // ---- what the element takes from upstream ------------------------------------------
    virtual bool takes_kind(const std::string& /*kind*/) const { return false; }
    /// Whether a stream with these caps goes in untouched (passthrough).
    virtual bool takes_as_is(const GstCaps* /*caps*/) const { return false; }
    /// What turns raw media of kind into what the element prefers, gst-launch syntax
    /// ("videoconvert ! vp8enc ..."); "" when the element takes raw media.
    virtual std::string encoder(const std::string& /*kind*/) const { return {}; }
    /// A new sink pad of the bin for one more stream of kind; nullptr when it takes no more.
    /// Any thread (see expose()).
    virtual GstPad* request_sink(const std::string& /*kind*/) { return nullptr; }
    /// request_sink() for a stream that upstream gave with caps (before any decoder connect()
    /// put in between), arriving as the media type arrives ("video/x-h264": the stream as it
    /// is, or what connect()'s encoder makes): a filter encodes its output back into the codec
    /// that came in; a sink prepares its muxer for what arrives.
    virtual GstPad* request_sink_for(const std::string& kind, const GstCaps* /*upstream*/,
                                     const std::string& /*arrives*/) {
        return request_sink(kind);
    }
    /// Why the last request_sink() of kind gave nullptr, for the user ("it came after the file
    /// had begun"); "" for the general "takes no more".
    virtual std::string refusal(const std::string& /*kind*/) const { return {}; }
    /// request_sink_for() knowing the element the stream comes from: an element that keeps
    /// each upstream element's streams apart (a WebRtcEndpoint gives each its own m-lines).
    virtual GstPad* request_sink_from(Core& /*from*/, const std::string& kind,
                                      const GstCaps* upstream, const std::string& arrives) {
        return request_sink_for(kind, upstream, arrives);
    }
    /// connect() made this element the downstream of from, before any of from's streams are
    /// linked; called in the order of the connect() calls. Main thread.
    virtual void upstream_connected(Core& /*from*/) {}
    /// The element upstream of this one has exposed every stream it will: an element that
    /// exposes a stream per stream it takes (a filter) has then exposed all of its own.
    virtual void upstream_all_exposed() {}

    /// A GStreamer error inside this element, in the user's words (the path, the URI).
    virtual std::string describe_error(const GError* e, ErrorCode code) const;
    /// An element message (GST_MESSAGE_ELEMENT) posted from inside the bin, on the main loop.
    virtual void on_element_message(GstMessage* /*msg*/) {}
    /// Main thread: every sink has its end of stream (their files are written), before the
    /// pipeline stops.
    virtual void on_ended() {}
    /// What kind of failure an error inside this element is, given the generic reading.
    virtual ErrorCode classify(const GError* /*e*/, ErrorCode code) const { return code; }

  protected:
    /// Every stream is exposed: tells the listeners once. Any thread.
    void announce_all_exposed();
    /// Adds a ghost pad for target to the bin, active.
    GstPad* ghost(GstPad* target, const std::string& pad_name);

  private:
    mutable std::mutex mutex_;
    std::vector<std::pair<gst::PadPtr, std::string>> exposed_;
    PadListener listener_;
    unsigned next_ = 0;
    std::atomic<bool> all_exposed_{false};
    std::vector<std::function<void()>> exposed_listeners_;
};

/// "video" or "audio" from caps; "" for anything else.
std::string kind_of(const GstCaps* caps);
/// The caps' media type ("video/x-vp8"), "" for empty caps.
std::string media_of(const GstCaps* caps);
/// The current caps of a pad, else what it can do.
gst::CapsPtr caps_of(GstPad* pad);
/// A bin from a gst-launch description, with ghost pads for its unlinked ends.
GstElement* make_bin(const std::string& description);
/// An ERROR or WARNING message's error and debug text.
struct BusProblem {
    gst::GErrorPtr error;
    gst::GCharPtr debug;
    const char* detail() const { return debug ? debug.get() : ""; }
};
BusProblem parse_problem(GstMessage* msg);
/// What every bus watch does with WARNING (logged in cat) and LATENCY (recalculated).
void on_routine_message(GstMessage* msg, GstElement* pipeline, GstDebugCategory* cat);

/// The ErrorCode of a GStreamer error: writing fails (Io), reading or decoding (BadInput).
ErrorCode error_code_of(const GError* e);
/// An element, or Error(MissingPlugin) naming its package.
GstElement* make_element(const char* factory, const char* package, const char* name = nullptr);

}  // namespace kms
