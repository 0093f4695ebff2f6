// Two video filters that work on the frame they are given: kmsflip (a mirror, horizontal or
// vertical) and kmsgrayscale (the chroma set to neutral). They are what the named filters flip
// and grayscale build. A frame another element still holds (a decoder's reference frame) is
// copied first by GstBaseTransform; a decoder's output through a pool, as vp8dec's, is not.
//
// Why not videoflip and videobalance: videoflip writes every pixel, one at a time, into a new
// frame, and videobalance saturation=0 runs every luma and chroma sample through its tables.
// Per 1080p frame (GST_TRACERS="latency(flags=element)", scripts/bench/filter_throughput's
// input): videoflip 3.0 ms and videobalance 1.1 ms, kmsflip 0.22 to 0.39 ms and kmsgrayscale
// 0.05 ms (built at -O2; -Os took twice that). And no second frame is allocated for it.
#pragma once

namespace kms::filter {

// Registers kmsflip and kmsgrayscale with GStreamer, once per process; later calls do nothing.
// kmsflip has one property, vertical (false: mirror left to right). Both take 8-bit YUV, planar
// or semi-planar (I420, NV12 and the like); kmsflip takes GRAY8, AYUV and 32-bit RGB too. A
// videoconvert in front turns anything else into one of those.
void register_in_place_elements();

}  // namespace kms::filter
