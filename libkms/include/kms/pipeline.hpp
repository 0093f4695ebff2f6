// Media elements joined in one pipeline: Kurento's MediaElement.connect() without its class
// tree. A Source, a WebRtcEndpoint or a Sink is an Element; a Pipeline holds them, links them
// stream by stream with connect(), and stops them with an end of stream that reaches every
// file before it reports ended.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kms/error.hpp"

namespace kms {

/// One stream an element gives downstream.
struct StreamInfo {
    std::string kind;   ///< "video" or "audio"
    std::string media;  ///< what it carries: "video/x-vp8", "audio/x-raw"; "" when not yet known
};

/// What connect() built for one stream.
struct LinkInfo {
    std::string kind;
    std::string from;                   ///< the media type the upstream element gave
    std::string to;                     ///< the media type the downstream element took
    bool passthrough = true;            ///< nothing decoded
    std::vector<std::string> elements;  ///< the factories inserted between the two, in order
};

class Pipeline;

/// What Source, Sink and WebRtcEndpoint have in common. Not copyable; the Pipeline keeps what
/// it needs of an element alive for as long as it runs (a WebRtcEndpoint's own state lives with
/// the WebRtcEndpoint: destroy it after its Pipeline).
class Element {
  public:
    virtual ~Element();
    Element(const Element&) = delete;
    Element& operator=(const Element&) = delete;

    /// The element's name in logs and messages ("source", "sink").
    std::string name() const;
    /// The streams this element gives downstream, as far as they are known now: a file's from
    /// probing it, a live source's from its URI; empty for stdin until its streams appear.
    std::vector<StreamInfo> streams() const;

    struct Core;  ///< private to libkms
    Core& core() const { return *core_; }

  protected:
    explicit Element(std::shared_ptr<Core> core);
    std::shared_ptr<Core> core_;
};

class Pipeline {
  public:
    struct Callbacks {
        /// Every stream reached the end of every sink: files are finalised. After stop(), or
        /// when all sources ended by themselves (not with a WebRtcEndpoint in the pipeline:
        /// a call ends when it says so). A second stop() ends at once, files as they are.
        std::function<void()> ended;
        /// Something failed; the pipeline has stopped. Errors while files are finalised (disk
        /// full while the muxer writes its index) come here too, after stop(). With a
        /// WebRtcEndpoint in it, an error outside the sinks leaves the pipeline running, so
        /// that the call can end with a goodbye; stop() then finishes the files.
        std::function<void(const Error& error)> failed;
        /// A note for the user that does not stop anything (a transcode, a stream left out).
        std::function<void(const std::string& message)> warning;
        /// connect() linked a stream (what links() will list), on the main loop.
        std::function<void(const LinkInfo& link)> linked;
        /// The first buffer of a linked stream went through, on the main loop; and again when
        /// one goes through after the stream was reported stalled.
        std::function<void(const LinkInfo& link)> flowing;
        /// A stream that was flowing has had no buffer for seconds (at least the time given to
        /// set_stall_after()), and has not ended: a camera that stopped sending. On the main
        /// loop, once per stall.
        std::function<void(const LinkInfo& link, double seconds)> stalled;
    };

    /// When connect() decodes and encodes.
    enum class Transcode {
        Auto,   ///< only what the downstream element cannot take as it is
        Force,  ///< every encoded stream, even one that would fit
        Never,  ///< a stream that does not fit fails with Error(Negotiation); raw media is encoded
    };

    /// name shows in GStreamer's debug log. Call from the main loop's thread, as every method.
    explicit Pipeline(const std::string& name, Callbacks callbacks = {});
    ~Pipeline();
    Pipeline(const Pipeline&) = delete;
    Pipeline& operator=(const Pipeline&) = delete;

    /// Links each stream of from to to, per kind, as the streams appear (a file's after its
    /// demuxer finds them). A stream to already takes as it is passes through untouched; any
    /// other is decoded and encoded into what to prefers. A kind to does not take is left out,
    /// with a warning. Throws Error(InvalidArgument) when to takes none of from's known kinds.
    void connect(Element& from, Element& to, Transcode transcode = Transcode::Auto);

    /// How long a sink waits for a source to show all its streams before it starts writing
    /// with those it has (a muxer takes no stream once it has begun): 2.5 s unless said. A
    /// source that says when it has shown them all (a file, RTSP once every announced stream
    /// has come) is waited for only until then. Call before start().
    void set_streams_wait(double seconds);

    /// After media has reached a sink, an error outside the sinks (a camera that went away, a
    /// file cut short) leaves the pipeline running: failed fires, and stop() then finishes the
    /// files with what came, as for a call. Off by default: the pipeline stops at once.
    void set_finish_files_on_error(bool on);

    /// How long a flowing stream may go without a buffer before stalled fires; 0 (the
    /// default): never. Checked once a second. Call before start().
    void set_stall_after(double seconds);

    /// Ends by media time rather than by the clock, for a source that is not live (a file is
    /// read faster or slower than real time): each stream's buffers from SECONDS of running
    /// time on are dropped, and once every stream that has not ended got there, reached() runs
    /// on the main loop, once (it would call stop()). Call before start().
    void set_media_limit(double seconds, std::function<void()> reached);

    /// Puts an element in the pipeline that nothing is connected to yet (a WebRtcEndpoint whose
    /// offer is made before anything is connected to it).
    void add(Element& element);

    /// Starts the media. Throws Error when an element will not start.
    void start();

    /// Ends the media with an end of stream from every source; ended fires once every sink has
    /// it. A second call stops at once, without waiting (files may then be cut short).
    void stop();

    /// True between start() and ended/failed.
    bool running() const;

    /// What connect() has built so far, one entry per linked stream.
    std::vector<LinkInfo> links() const;

    struct Impl;  ///< private to libkms

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace kms
