// Where media goes: a container file (WebM, MKV, MP4), "-" (a Matroska stream on stdout),
// "null:" (discarded) or "display:" (shown and played).
#pragma once

#include "kms/pipeline.hpp"
#include "kms/uri.hpp"

namespace kms {

struct SinkOptions {
    /// "webm", "matroska", "mp4"; empty to take it from the file's extension.
    std::string format;
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
    /// Whether a stream of this media type ("video/x-vp8") goes in untouched.
    bool takes_as_is(const std::string& media) const;
};

}  // namespace kms
