// A media source from any source URI (uri.hpp): test patterns, files, stdin, devices.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "kms/pipeline.hpp"
#include "kms/uri.hpp"

namespace kms {

struct SourceOptions {
    /// Pace a file or stdin at real time (a call sends it as it would play), rather than as
    /// fast as it can be read (a recording of a file).
    bool realtime = false;
    /// Only these kinds ("video", "audio"); empty for all the URI has.
    std::vector<std::string> kinds;
    /// rtsp://: "tcp" or "udp" only; empty lets the camera and rtspsrc agree (UDP, then TCP).
    std::string rtsp_transport;
};

/// One RTP stream of an rtsp:// or rtp:// source so far, in W3C inbound-rtp terms.
struct RtpStreamStats {
    std::string kind;                         ///< "video", "audio", as its RTP caps say
    unsigned ssrc = 0;                        ///< the newest packet's
    unsigned long long packets_received = 0;  ///< out of the jitter buffer
    unsigned long long bytes_received = 0;    ///< RTP payload bytes
    unsigned long long packets_lost = 0;      ///< that the jitter buffer gave up on
    unsigned long long frames_received = 0;   ///< depayloaded frames
    double jitter_s = -1;                     ///< the jitter buffer's smoothed jitter; -1: none
};

/// Tries a TCP connection to the server of an http(s):// URI (10 s at most; not through a proxy
/// the environment names, which is left to tell): a refusal or a timeout throws Error(Network)
/// naming the URI, where GStreamer would say only "Internal data stream error".
void reach_http_server(const MediaUri& uri);

class Source : public Element {
  public:
    /// Checks the URI now (an RTSP camera is reached only once the pipeline starts; a
    /// camera that refuses or cannot be reached fails it with Error(Network)): a missing or
    /// unreadable file, or one that holds no audio or video,
    /// throws Error(BadInput) naming it; a URI scheme not supported yet, Error(InvalidArgument);
    /// a plugin that is not installed, Error(MissingPlugin) naming the package.
    explicit Source(const MediaUri& uri, SourceOptions options = {});
    ~Source() override;

    /// Keeps a file or stdin from being read until release(): what it holds first (a key frame
    /// that passthrough cannot make again) waits for a receiver that can use it. Live sources
    /// (test patterns, devices) are not held. Call before Pipeline::start().
    void hold();
    void release();

    /// Fires on the main loop when every stream of the source has ended.
    void on_ended(std::function<void()> fn);

    const MediaUri& uri() const;

    /// Each RTP stream of an rtsp:// or rtp:// source; empty for every other. Its packets_lost
    /// are the sequence numbers its jitter buffer gave up on, late ones included. Main thread.
    std::vector<RtpStreamStats> rtp_stats() const;
};

}  // namespace kms
