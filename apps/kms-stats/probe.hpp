// Probe: a file or a live source demuxed and parsed, never decoded, and each track measured from
// its buffers' timestamps, sizes and key-frame flags.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kms/events.hpp"
#include "kms/loop.hpp"
#include "metrics.hpp"

namespace kms::stats {

struct ProbeOptions {
    std::string input;           ///< a path, file://, http(s)://, rtsp://, test:..., or -
    double duration = 0;         ///< seconds to measure; 0: a file to its end, a live source 10 s
    double gap_threshold = 0.5;  ///< a hole in the timestamps longer than this is a gap
};

struct Gap {
    double at = 0;      ///< seconds from the start of the input, where the hole begins
    double length = 0;  ///< seconds
};

struct TrackStats {
    std::string kind;   ///< video, audio, or the media type's first part
    std::string media;  ///< video/x-h264
    std::string codec;  ///< "H.264 (High Profile)", as GStreamer describes the caps
    int width = 0, height = 0;
    int rate = 0, channels = 0;
    unsigned long long frames = 0;
    unsigned long long bytes = 0;
    double start = 0;         ///< seconds, first timestamp
    double duration = 0;      ///< seconds, first timestamp to the end of the last buffer
    double fps = 0;           ///< buffers per second between timestamps, gaps left out
    double bitrate = 0;       ///< bits per second over the duration
    double peak_bitrate = 0;  ///< the largest one-second window
    unsigned long long key_frames = 0;
    std::optional<double> key_interval;      ///< seconds between key frames, mean
    std::optional<double> key_interval_max;  ///< seconds, the longest
    std::optional<double> key_interval_frames;
    std::vector<Gap> gaps;
};

struct ProbeResult {
    std::string input;  ///< as it can be shown (passwords as ***)
    bool live = false;
    double measured_for = 0;          ///< wall-clock seconds of a live measurement
    double duration = 0;              ///< first timestamp of any track to the last end
    std::optional<double> av_offset;  ///< first audio timestamp minus first video, seconds
    /// What the container says it lasts (a Matroska or MP4 header); a file that holds much
    /// less than this was cut short.
    std::optional<double> declared_duration;
    /// The media falls short of declared_duration by more than a second and a tenth of it.
    bool cut_short() const {
        return declared_duration && *declared_duration - duration > 1 &&
               *declared_duration - duration > 0.1 * *declared_duration;
    }
    std::vector<TrackStats> tracks;
};

/// Runs the probe on loop (the process's main loop) until the input ends, the duration is over
/// or someone calls loop.quit() (a signal: the figures so far are kept). Throws kms::Error:
/// BadInput for unreadable media, InvalidArgument for a URI it does not take, MissingPlugin.
ProbeResult probe(const ProbeOptions& options, Loop& loop);

Json probe_json(const ProbeResult& r);
void print_probe(std::FILE* out, const ProbeResult& r);
Metrics probe_metrics(const ProbeResult& r);
Samples probe_samples(const ProbeResult& r);

}  // namespace kms::stats
