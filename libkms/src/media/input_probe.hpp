// What a media file holds, asked before a call starts: a missing, unreadable or non-media file
// is refused with a clear message (exit 3) before an offer goes out, and a file without video
// does not offer to send video.
#pragma once

#include <string>

namespace kms::media {

struct InputProbe {
    bool known = false;  ///< false for a pipe or fifo: probing would eat the start of the stream
    bool video = false;
    bool audio = false;
    std::string video_caps;  ///< e.g. "video/x-h264"; empty when there is no video
    std::string audio_caps;
    double duration_s = 0;  ///< what the container says, 0 when it does not say
    unsigned streams = 0;   ///< audio and video streams, of any codec
    /// The demuxer that read it, when the file is one that needs no typefinding (Matroska,
    /// WebM); a Source then reads it with that, not parsebin. "" otherwise.
    std::string demuxer;
};

/// Probes the file at path (at most timeout_s seconds): Matroska and WebM with their demuxer
/// alone, anything else with GStreamer's discoverer, whose decoders and typefinders a plain
/// file does not need (1.7 MB of a kms-filter's peak memory). Throws
/// Error(BadInput) starting with label (what the user typed: "--send a.webm") and saying what
/// is wrong with the file.
InputProbe probe_input(const std::string& path, const std::string& label, double timeout_s = 5.0);

}  // namespace kms::media
