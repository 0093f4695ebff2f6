// Decoders chosen the way decodebin chooses them, as plain elements.
#pragma once

#include <string>

#include <gst/gst.h>

namespace kms::media {

/// A gst-launch description of a decoder for a parsed stream with these caps (media is the
/// caps' name, "video/x-h264"): kms's own codec table first, then the highest-ranked decoder
/// GStreamer has. Throws Error(BadInput) when there is none.
///
/// Why not decodebin: decodebin and parsebin delay the pipeline's PLAYING until they expose
/// their pads, and a decoder with latency (H.264 with B-frames) then waits for data that a
/// clocksync, still in PAUSED, holds back in the other stream of the same file: a deadlock.
std::string decoder_for(GstCaps* caps, const std::string& media);

}  // namespace kms::media
