// A media filter (Kurento's GStreamerFilter and its filter modules): a chain of GStreamer
// elements per kind, given by name ("flip", "qr") or as gst-launch fragments, that changes the
// media, watches it and reports what it sees as events, or both.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "kms/events.hpp"
#include "kms/pipeline.hpp"

namespace kms {

/// One step of a filter chain.
struct FilterStage {
    std::string name;         ///< what the user wrote: "flip", or the fragment itself
    std::string kind;         ///< "video" or "audio"
    std::string description;  ///< gst-launch syntax
    /// Watches without changing the media (qr, level): its kind passes through encoded, and a
    /// decoded copy feeds the stage.
    bool analysis = false;
    /// The smallest picture the stage takes (crop: what it cuts off, plus a pixel); a smaller
    /// one is refused with Error(InvalidArgument) when the stream arrives. 0: any.
    unsigned min_width = 0, min_height = 0;
    /// The file the stage reads (image's picture, chroma's background), for error messages.
    std::string file;
};

/// Parses a command line of named filters and gst-launch fragments, in order. A named filter
/// takes its arguments ("rotate 90", "text 'hello'") and then KEY=VALUE options; a token that
/// is not a named filter is a fragment ("videoflip method=horizontal-flip ! videobalance
/// saturation=0"), and KEY=VALUE tokens after it are properties of its last element.
/// Throws Error(InvalidArgument) for an unknown name or a bad argument (naming the closest
/// known element), Error(BadInput) for a fragment whose elements cannot link (naming the two
/// pads), Error(MissingPlugin) naming the Debian package of a missing element.
/// background is the picture chroma puts behind what it keys out, when it names none itself.
std::vector<FilterStage> parse_filters(const std::vector<std::string>& args,
                                       const std::string& background = {});

/// What a video stream is, as far as its caps say (0: unknown).
struct FrameInfo {
    int width = 0, height = 0;
    int fps_n = 0, fps_d = 0;
};
/// A stage's description for a stream: chroma's description leaves {width}, {height} and
/// {rate} to fill in when the stream arrives.
std::string fill_frame(std::string description, const FrameInfo& frame);

/// The named filters, for --help and the man page: name, arguments, what it does.
struct NamedFilterInfo {
    const char* name;
    const char* args;
    const char* summary;
};
const std::vector<NamedFilterInfo>& named_filters();

struct FilterOptions {
    std::vector<FilterStage> stages;
    /// Live input: when the filter cannot keep up it drops frames (reported) rather than
    /// falling behind. Otherwise nothing is dropped and the input waits.
    bool live = false;
    /// What filtered video is encoded into: "" the codec that came in (a raw input stays raw
    /// and the sink encodes it), "raw" none, or vp8, vp9, h264, h265.
    std::string video_codec;
    std::string audio_codec;      ///< "", "raw", opus, vorbis, aac
    unsigned max_video_kbps = 0;  ///< 0: the encoder's default
};

class Filter : public Element {
  public:
    /// What the analysis stages report: type ("code-found", "level", "faces", "transcript") and
    /// its fields, on the main loop.
    using EventFn = std::function<void(const std::string& type, const Json& fields)>;

    /// Throws Error as parse_filters() does, and Error(InvalidArgument) for an unknown codec.
    Filter(FilterOptions options, EventFn on_event);
    ~Filter() override;

    /// Frames dropped so far because the filter could not keep up with live input.
    unsigned long long dropped() const;
    /// Frames that went through the filter so far, per kind ("video", "audio").
    unsigned long long frames(const std::string& kind) const;
};

}  // namespace kms
