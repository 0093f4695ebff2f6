// A file source for the probe whose buffers read their bytes only when someone looks at them.
//
// A demuxer that works from its container's index (qtdemux in pull mode) reads each frame by
// asking upstream for its byte range, then passes it on; the probe only counts its size, time
// and key flag. filesrc copies every frame out of the page cache for nothing: on a 10-minute
// 720p MP4, a fifth of the probe's time went to read(2) and its copy. This source hands out
// buffers of the asked size whose memory is read (pread) on its first map, so the headers the
// demuxer parses are real and the frames nobody maps are never read. The file is read, not
// mapped, so a file cut short while it is probed gives a short read, never a SIGBUS.
#pragma once

#include <gst/gst.h>

#include <string>

namespace kms::stats {

/// A new source element (floating reference) reading the regular file at PATH, random access
/// only (pull mode), as filesrc would serve it; nullptr with ERROR set when it cannot be opened.
GstElement* lazy_file_src_new(const std::string& path, GError** error);

}  // namespace kms::stats
