// The elements that turn an RTP stream back into its codec's stream without decoding it: a
// depayloader and, where GStreamer has one, a parser. kms plugs them itself for rtsp:// and
// rtp:// sources instead of a parsebin per stream, which for the same two elements cost each
// recording about 0.6 MB and a pad hop per packet. Private to libkms.
#pragma once

#include <gst/gst.h>

#include <string>
#include <vector>

namespace kms::source {

/// The factory names of the depayloader for RTP with rtp_caps and of the parser for what it
/// gives (none where there is none, as for VP8), each the highest-ranked that fits, as
/// parsebin would choose. Empty when no depayloader fits, or when it gives a container (an
/// MPEG-TS stream) that needs a demuxer: parsebin's job.
std::vector<std::string> depay_chain(const GstCaps* rtp_caps);

}  // namespace kms::source
