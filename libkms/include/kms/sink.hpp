// Where media goes: a container file (WebM, MKV, MP4), "-" (a Matroska stream on stdout),
// "null:" (discarded) or "display:" (shown and played).
#pragma once

#include <ctime>
#include <functional>

#include "kms/pipeline.hpp"
#include "kms/uri.hpp"

namespace kms {

struct SinkOptions {
    /// "webm", "matroska", "mp4"; empty to take it from the file's extension.
    std::string format;
    /// Files: a new file every this many seconds or bytes (0: one file), cut at a video key
    /// frame. The path then takes strftime fields and %i, or %0Ni, for the file's index from 0
    /// ("cam-%Y%m%d-%H%M%S.mkv"); a path with neither gets "-%i" before its extension.
    double segment_s = 0;
    unsigned long long segment_bytes = 0;
    /// One file or "-": once the muxer has written this many bytes (0: no cap), every stream
    /// into it ends there and the file is finished, above the cap by what the muxer still held
    /// (up to a second of media) and its index. Counted as written, so a file read faster than
    /// real time stops there too. Not with segments (segment_bytes is their cap).
    unsigned long long max_bytes = 0;
    /// Files and segments: the disk guard. A recording is refused when the disk holding its
    /// folder has less than this many bytes free (Error(Io)); once started, it looks as the
    /// muxer writes (every second, sooner as the disk fills), and when the free space falls
    /// below this plus 32 bytes a second of the file being written (room for its index), every
    /// stream ends there and the file is finished, whole and seekable, where a full disk would
    /// cut it mid-write. 0: no guard.
    unsigned long long min_free = 0;
};

/// Bytes as people read them: "512 B", "390.1 kB", "8.4 MB" (powers of 1000).
std::string human_bytes(long long n);

/// A finished file of a segmented Sink.
struct Segment {
    std::string path;
    /// The index its name was given (%i): a restart's first file may be 4, past those there.
    unsigned index = 0;
    double duration_s = 0;
    long long bytes = 0;
};

class Sink : public Element {
  public:
    /// Checks the URI now: an unknown container throws Error(InvalidArgument); a file that
    /// cannot be created, Error(Io) with the path and the reason; a missing muxer,
    /// Error(MissingPlugin).
    explicit Sink(const MediaUri& uri, SinkOptions options = {});
    ~Sink() override;

    /// The container written, "webm", "matroska", "mp4"; "" for null: and display:.
    std::string container() const;
    /// Whether the file at the path is this recording's: media reached the muxer and its first
    /// bytes are on disk (until then it is written under a hidden name beside, ".NAME.part").
    /// An existing file is replaced only then; a run that fails or is killed before leaves it
    /// as it was.
    bool writing() const;
    /// Whether a stream of this media type ("video/x-vp8") goes in untouched.
    bool takes_as_is(const std::string& media) const;
    /// The same for a codec as the tools' options name it (vp8, vp9, h264, h265, opus,
    /// vorbis, aac); false for a name it does not know.
    bool takes_codec(const std::string& codec) const;
    /// fn runs on the main loop, once, when max_bytes is reached (it would call
    /// Pipeline::stop(): a live source goes on sending).
    void on_full(std::function<void()> fn);
    /// fn runs on the main loop, once, when the disk guard (min_free) ends the streams, with
    /// the bytes that were free then (it would call Pipeline::stop(), as for on_full).
    void on_disk_low(std::function<void(unsigned long long free_bytes)> fn);
    /// Segmented: fn runs on the main loop each time a file is finished.
    void on_segment(std::function<void(const Segment&)> fn);
    /// A video stream changed its picture size mid-stream ("640x360" to "1280x720"); fn runs on
    /// the main loop. The recording goes on in the same file: the codecs kms records carry
    /// their sizes in the stream (VP8, VP9, AV1 key frames; H.264 and H.265 are written as
    /// avc3/hev1, parameter sets before each key frame), so the track header keeps the first
    /// size and decoders follow the stream.
    void on_size_change(
        std::function<void(const std::string& kind, const std::string& from, const std::string& to)>
            fn);
    /// Segmented: the path pattern the files are named by (the URI's, with "-%i" added before
    /// the extension when it has no field); "" otherwise.
    std::string segment_pattern() const;
    /// Makes the folders of path (pattern expanded) that pattern's fields name, as mkdir -p,
    /// below the part of pattern before its first field: "rec/%Y/%m/cam.mkv" makes rec/2026 and
    /// rec/2026/11 when rec exists. A segmented Sink does this for each file itself.
    static void make_dated_folders(const std::string& pattern, const std::string& path);
    /// The file's path for segment index at time t (strftime fields in local time).
    static std::string segment_path(const std::string& pattern, unsigned index, time_t t);
};

}  // namespace kms
