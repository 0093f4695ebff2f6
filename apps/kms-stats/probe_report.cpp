// The probe's result for people (text), for scripts (JSON), for --assert and for Prometheus.
#include <chrono>
#include <cmath>
#include <cstdio>

#include "probe.hpp"
#include "report.hpp"

namespace kms::stats {

Json probe_json(const ProbeResult& r) {
    Json doc{{"input", r.input},
             {"live", r.live},
             {"duration", round_to(r.duration, 3)},
             {"tracks", Json::array()}};
    if (r.live) doc["measuredFor"] = round_to(r.measured_for, 2);
    doc["avOffset"] = r.av_offset ? Json(round_to(*r.av_offset, 3)) : Json(nullptr);
    doc["declaredDuration"] =
        r.declared_duration ? Json(round_to(*r.declared_duration, 3)) : Json(nullptr);
    doc["cutShort"] = r.cut_short();
    for (const auto& t : r.tracks) {
        Json j{{"kind", t.kind}, {"media", t.media}, {"codec", t.codec}};
        if (t.width) {
            j["width"] = t.width;
            j["height"] = t.height;
        }
        if (t.rate) j["rate"] = t.rate;
        if (t.channels) j["channels"] = t.channels;
        j["frames"] = t.frames;
        j["bytes"] = t.bytes;
        j["start"] = round_to(t.start, 3);
        j["duration"] = round_to(t.duration, 3);
        j["framesPerSecond"] = round_to(t.fps, 3);
        j["bitrate"] = std::llround(t.bitrate);
        j["peakBitrate"] = std::llround(t.peak_bitrate);
        j["keyFrames"] = t.key_frames;
        if (t.key_interval) {
            j["keyFrameInterval"] = round_to(*t.key_interval, 3);
            j["keyFrameIntervalMax"] = round_to(*t.key_interval_max, 3);
            j["keyFrameIntervalFrames"] = round_to(*t.key_interval_frames, 1);
        }
        Json gaps = Json::array();
        for (const auto& g : t.gaps)
            gaps.push_back(Json{{"at", round_to(g.at, 3)}, {"length", round_to(g.length, 3)}});
        j["gaps"] = gaps;
        doc["tracks"].push_back(j);
    }
    return doc;
}

void print_probe(std::FILE* out, const ProbeResult& r) {
    std::fprintf(out, "%s: %s, %zu track%s%s\n", r.input.c_str(), seconds_text(r.duration).c_str(),
                 r.tracks.size(), r.tracks.size() == 1 ? "" : "s",
                 r.live ? (", live, measured for " + seconds_text(r.measured_for)).c_str() : "");
    for (const auto& t : r.tracks) {
        std::fprintf(out, "%s: %s", t.kind.c_str(), t.codec.c_str());
        if (t.width) std::fprintf(out, ", %dx%d", t.width, t.height);
        if (t.rate) std::fprintf(out, ", %d Hz", t.rate);
        if (t.channels) std::fprintf(out, ", %d ch", t.channels);
        std::fprintf(out, "\n");
        std::fprintf(out, "  duration      %s from %s\n", seconds_text(t.duration).c_str(),
                     seconds_text(t.start).c_str());
        std::fprintf(out, "  frames        %llu (%.2f per second)\n", t.frames, t.fps);
        std::fprintf(out, "  bitrate       %s average, %s peak (1 s window)\n",
                     bitrate_text(t.bitrate).c_str(), bitrate_text(t.peak_bitrate).c_str());
        if (t.key_interval)
            std::fprintf(out, "  key frames    %llu, every %s (%.1f frames), longest %s\n",
                         t.key_frames, seconds_text(*t.key_interval).c_str(),
                         *t.key_interval_frames, seconds_text(*t.key_interval_max).c_str());
        else if (t.kind == "video")
            std::fprintf(out, "  key frames    %llu\n", t.key_frames);
        for (const auto& g : t.gaps)
            std::fprintf(out, "  gap           at %s, %s long\n", seconds_text(g.at).c_str(),
                         seconds_text(g.length).c_str());
        if (t.gaps.empty()) std::fprintf(out, "  gaps          none\n");
    }
    if (r.av_offset)
        std::fprintf(out, "audio starts %.3f s %s video\n", std::fabs(*r.av_offset),
                     *r.av_offset >= 0 ? "after" : "before");
}

Metrics probe_metrics(const ProbeResult& r) {
    Metrics m;
    m.push_back({"duration", r.duration, Dim::Seconds});
    double total = 0, gaps = 0, longest = 0;
    bool seen_video = false, seen_audio = false;
    for (const auto& t : r.tracks) {
        total += t.bitrate;
        gaps += double(t.gaps.size());
        for (const auto& g : t.gaps) longest = std::max(longest, g.length);
        // The first track of a kind answers for it.
        bool& seen = t.kind == "video" ? seen_video : seen_audio;
        if ((t.kind != "video" && t.kind != "audio") || seen) continue;
        seen = true;
        const std::string k = t.kind + ".";
        m.push_back({k + "fps", t.fps, Dim::Fps});
        m.push_back({k + "bitrate", t.bitrate, Dim::Bitrate});
        m.push_back({k + "bitrate.peak", t.peak_bitrate, Dim::Bitrate});
        m.push_back({k + "duration", t.duration, Dim::Seconds});
        m.push_back({k + "frames", double(t.frames), Dim::Count});
        m.push_back({k + "gaps", double(t.gaps.size()), Dim::Count});
        if (t.width) {
            m.push_back({k + "width", double(t.width), Dim::Count});
            m.push_back({k + "height", double(t.height), Dim::Count});
        }
        if (t.key_interval) {
            m.push_back({k + "keyframe.interval", *t.key_interval, Dim::Seconds});
            m.push_back({k + "keyframe.interval.max", *t.key_interval_max, Dim::Seconds});
        }
    }
    m.push_back({"bitrate", total, Dim::Bitrate});
    m.push_back({"gaps", gaps, Dim::Count});
    m.push_back({"gap.max", longest, Dim::Seconds});
    if (r.av_offset) m.push_back({"av.offset", std::fabs(*r.av_offset), Dim::Seconds});
    return m;
}

Samples probe_samples(const ProbeResult& r) {
    Samples s;
    // The track's index is a label too: a file with two audio tracks of one codec (two
    // languages) would otherwise write each series twice, and node_exporter refuses the file.
    for (size_t i = 0; i < r.tracks.size(); ++i) {
        const auto& t = r.tracks[i];
        const std::vector<std::pair<std::string, std::string>> l{
            {"kind", t.kind}, {"media", t.media}, {"track", std::to_string(i)}};
        s.push_back({"kms_probe_duration_seconds", "gauge",
                     "Seconds from a track's first timestamp to the end of its last buffer", l,
                     t.duration});
        s.push_back(
            {"kms_probe_frames", "gauge", "Buffers (frames) the track holds", l, double(t.frames)});
        s.push_back({"kms_probe_frames_per_second", "gauge",
                     "Frame rate measured from the buffers' timestamps, gaps left out", l, t.fps});
        auto avg = l, peak = l;
        avg.push_back({"window", "average"});
        peak.push_back({"window", "peak_1s"});
        s.push_back({"kms_probe_bitrate_bits_per_second", "gauge",
                     "Bitrate over the whole track, and its largest one-second window", avg,
                     t.bitrate});
        s.push_back({"kms_probe_bitrate_bits_per_second", "gauge", "", peak, t.peak_bitrate});
        if (t.key_interval)
            s.push_back({"kms_probe_keyframe_interval_seconds", "gauge",
                         "Mean seconds between key frames", l, *t.key_interval});
        double hole = 0;
        for (const auto& g : t.gaps) hole += g.length;
        s.push_back({"kms_probe_gaps", "gauge", "Holes in the timestamps longer than the threshold",
                     l, double(t.gaps.size())});
        s.push_back(
            {"kms_probe_gap_seconds", "gauge", "Seconds of all the holes together", l, hole});
    }
    if (r.av_offset)
        s.push_back({"kms_probe_av_offset_seconds",
                     "gauge",
                     "First audio timestamp minus first video timestamp",
                     {},
                     *r.av_offset});
    // A monitor tells a fresh file from one a failing probe left behind.
    s.push_back({"kms_stats_last_run_timestamp_seconds",
                 "gauge",
                 "When kms-stats wrote this file (Unix time)",
                 {},
                 std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                     .count()});
    return s;
}

}  // namespace kms::stats
