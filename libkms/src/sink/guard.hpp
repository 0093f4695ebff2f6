// The guard before each muxer input of a Sink: what a muxer would take badly never reaches it.
// - Times only go forward. A frame without a time gets one; a frame whose time steps back by up
//   to 2 s (a lip-sync correction, a sender that restarted) is left out, as its time is already
//   in the file: audio up to where it was, video up to a key frame past it (a frame without
//   those before it would decode as a smear). Video whose decode time is not known (H.264 with
//   a PTS only: B-frames come out of order) is left alone, and a larger step is a new timeline,
//   kept. Both muxers write such times as they come, and players and ffmpeg take the file badly
//   ("non monotonically increasing dts").
// - Video: later caps of the same codec do not reach the muxer (see Sink::on_size_change).
// Private to libkms.
#pragma once

#include <gst/gst.h>

#include <functional>
#include <string>

namespace kms::sink {

/// Streaming thread: a video stream changed its picture size ("640x360", "1280x720").
using SizeChanged = std::function<void(const std::string& from, const std::string& to)>;

/// Guards what leaves src (the pad that feeds a muxer input) for a stream of this kind.
void add_guard(GstPad* src, const std::string& kind, SizeChanged size_changed);

}  // namespace kms::sink
