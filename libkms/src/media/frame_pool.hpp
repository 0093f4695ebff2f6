// How many decoded frames a decoder may have out at once, for a decoder that runs a frame
// ahead of its consumer on a thread of its own.
#pragma once

#include <gst/gst.h>

namespace kms::media {

/// Bounds the buffer pool of whatever decoder ends up upstream of pad (the sink pad of the
/// queue that starts the consumer's thread) to `frames` buffers, by amending the answer to
/// each allocation query that passes pad. Once that many are out, the decoder decodes its
/// next frame into its own reference buffers and waits to copy it out until the consumer lets
/// one go: the threads still overlap, and decoded frames (3 MB each at 1080p) no longer pile
/// up in the queue while the consumer is slower than the decoder.
///
/// Only for decoders that copy each frame into a buffer of the pool (vp8dec): one that keeps
/// its reference frames there (mpeg2dec) would wait forever, and one that makes its own pool
/// (avdec_*) or hands out its own frames (vp9dec) is not bounded by it.
/// Only for consumers that let each frame go once they have worked on it: an element that
/// keeps one until the next comes (videorate, an aggregator, a sink's last sample) would wait
/// for a frame the decoder cannot make.
void bound_decoded_frames(GstPad* pad, unsigned frames);

}  // namespace kms::media
