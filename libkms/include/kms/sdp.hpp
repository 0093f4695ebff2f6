// Session descriptions from untrusted peers: checked line by line, then read through GStreamer's
// SDP parser. Never throws on bad bytes: a parse returns the SDP or an error naming the line.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kms/error.hpp"

namespace kms {

struct SdpCodec {
    std::string name;  ///< lower case: "vp8", "opus", "pcmu", "telephone-event" ...
    int payload = -1;
    int clock_rate = 0;
    int channels = 0;
    std::string fmtp;
};

struct SdpMedia {
    std::string kind;  ///< "audio", "video", "application"
    int port = 0;      ///< 0: the m-line is rejected
    std::string proto;
    std::string mid;
    std::string direction = "sendrecv";
    std::vector<SdpCodec> codecs;  ///< in the order of the m-line
    int line = 0;                  ///< 1-based line of the m= line
    bool bundle_only = false;      ///< port 0 with a=bundle-only is live (RFC 8843 §6)
    unsigned bandwidth_kbps = 0;   ///< b=AS (RFC 8866 §5.8), 0 when absent
    bool rejected() const { return port == 0 && !bundle_only; }
};

struct Sdp {
    std::string text;  ///< normalised: CRLF line ends
    std::vector<SdpMedia> media;
    std::string fingerprint_algorithm;  ///< of the first fingerprint found, e.g. "sha-256"
    std::string fingerprint;            ///< hex with colons, upper case
};

struct SdpError {
    ErrorCode code =
        ErrorCode::BadInput;  ///< BadInput for syntax, Negotiation for what WebRTC refuses
    int line = 0;             ///< 0 when not tied to a line
    std::string message;
};

struct SdpParse {
    std::optional<Sdp> sdp;
    SdpError error;
    explicit operator bool() const { return sdp.has_value(); }
};

/// Parses an SDP. With webrtc set, also requires what a WebRTC peer must send (ICE credentials,
/// a DTLS fingerprint on every live m-line, a secure RTP profile).
SdpParse parse_sdp(std::string_view text, bool webrtc = true);

/// How an SDP travels between peers (--sdp-format).
enum class SdpFormat { Sdp, BrowserJson, Base64Json };

/// Parses "sdp", "json" or "base64"; throws Error(InvalidArgument) otherwise.
SdpFormat parse_sdp_format(std::string_view name);

struct SdpEnvelope {
    std::string type;  ///< "offer" or "answer" ("" when the plain format carries none)
    std::string sdp;
};

/// Unwraps a description received in the given format. Never throws; nullopt with error set on
/// bad input (bad JSON, bad base64, missing "sdp").
std::optional<SdpEnvelope> decode_sdp(std::string_view data, SdpFormat format, std::string* error);

/// Wraps a description for sending. The plain format ends with an empty line so that a reader of
/// a stream knows where it stops; json and base64 are one line.
std::string encode_sdp(const SdpEnvelope& env, SdpFormat format);

/// Cuts one description off the front of a stream's lines: "" until it is complete. A plain SDP
/// ends at an empty line (or end of input, via finish); json ends when the object is complete;
/// base64 is one line.
class SdpFramer {
  public:
    explicit SdpFramer(SdpFormat format) : format_(format) {}
    /// Feeds one line (without its newline). Returns true when a description is complete.
    bool feed(const std::string& line);
    /// End of input: true when what was fed makes a description.
    bool finish() const { return !buffer_.empty(); }
    const std::string& text() const { return buffer_; }
    bool too_large() const { return buffer_.size() > 256 * 1024; }

  private:
    SdpFormat format_;
    std::string buffer_;
};

}  // namespace kms
