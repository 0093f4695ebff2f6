// rtp://ADDR:PORT?sdp=FILE sources: which streams arrive, where, and what they carry.
#pragma once

#include <string>
#include <vector>

#include "kms/uri.hpp"

namespace kms {

/// One stream of an rtp:// source.
struct RtpStream {
    std::string kind;        ///< "audio" or "video"
    std::string address;     ///< where to listen: a local address (0.0.0.0, :: for any) or a group
    bool multicast = false;  ///< address is a group: joined, and the port may be shared
    int port = 0;            ///< where its RTP arrives
    std::string caps;        ///< what a depayloader takes, in GStreamer caps syntax (from the SDP)
};

/// Reads the SDP file of an rtp:// URI. The file gives each stream's payload type, codec and
/// clock rate (its m= and a=rtpmap/fmtp lines); the URI gives where they arrive: PORT is the
/// first RTP section's port and later sections keep their distance from it (audio 5004 and
/// video 5006 read at rtp://0.0.0.0:6000 listen on 6000 and 6002). Throws Error:
/// InvalidArgument for a URI without sdp= or with another parameter, or a port moved out of
/// 1-65535; BadInput for a file that cannot be read, is not SDP (naming the line), holds no
/// audio or video RTP stream, or names a codec no installed depayloader takes.
std::vector<RtpStream> rtp_streams(const MediaUri& uri);

}  // namespace kms
