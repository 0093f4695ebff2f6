// The SDP behind an rtp:// source: which streams arrive, where, and what they carry.
#pragma once

#include <string>
#include <vector>

namespace kms::media {

struct RtpStream {
    std::string kind;  ///< "audio" or "video"
    int port = 0;      ///< where its RTP arrives
    std::string caps;  ///< application/x-rtp caps for a depayloader, from its first format
};

/// Reads the SDP file at path for an rtp://ADDRESS:PORT source. The file gives each stream's
/// payload type, codec and clock rate (its m= and a=rtpmap/fmtp lines); the URI gives where
/// they arrive: port is the first RTP section's port and later sections keep their distance
/// from it (audio 5004 and video 5006 read at rtp://0.0.0.0:6000 listen on 6000 and 6002).
/// Throws Error: BadInput for a file that cannot be read, is not SDP (naming the line) or holds
/// no audio or video RTP stream; InvalidArgument when a port would leave 1-65535.
std::vector<RtpStream> rtp_streams(const std::string& path, int port);

}  // namespace kms::media
