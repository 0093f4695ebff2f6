// The guard before each muxer input of a Sink: what a muxer would take badly never reaches it.
// - Times only go forward. A frame without a time gets one; a frame whose time steps back (a
//   lip-sync correction, a camera's clock that jumped, a sender that restarted) is moved after
//   the frame before (video: dropping it would cost the rest of its GOP) or, for audio, left
//   out (its time is already covered). Both muxers write such times as they come, and players
//   and ffmpeg take the file badly ("non monotonically increasing dts").
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
