// A WebRTC endpoint (Kurento's WebRtcEndpoint): an Element that sends what is connected into it
// to one peer, gives what the peer sends to what it is connected to, and carries an optional
// data channel. SDP travels outside, as text. kms-call composes a call as
//   Source -> WebRtcEndpoint -> Sink
// in one Pipeline: each Source connected in gets m-lines of its own (in connect() order), and
// each received m-line is a stream of the endpoint's, as it arrived (encoded, not decoded).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kms/error.hpp"
#include "kms/events.hpp"
#include "kms/pipeline.hpp"

namespace kms {

enum class Role { Offerer, Answerer };
enum class MediaDirection { SendRecv, SendOnly, RecvOnly };
/// The key of the endpoint's DTLS certificate: ECDSA P-256 as browsers make it, or RSA-2048.
enum class DtlsKey { Ecdsa, Rsa };

struct IceOptions {
    std::vector<std::string> bind;  ///< interface names or addresses to gather host candidates on
    std::string stun;               ///< stun:host[:port]
    std::vector<std::string> turn;  ///< turn:[user:pass@]host[:port][?transport=udp|tcp]
    std::string turn_user;          ///< used when a TURN URI carries no credentials
    std::string turn_password;
    bool relay_only = false;  ///< --ice-transport-policy relay
    unsigned port_min = 0;    ///< --port-range; 0 = any
    unsigned port_max = 0;
};

struct WebRtcOptions {
    Role role = Role::Offerer;
    MediaDirection direction = MediaDirection::SendRecv;
    bool audio = true;
    bool video = true;
    /// Preference lists, most wanted first. A stream connected in that is already in the
    /// negotiated codec is sent as it is (passthrough); any other is decoded and encoded. Names:
    /// vp8 vp9 h264 / opus pcmu pcma g722.
    std::vector<std::string> video_codecs{"vp8", "vp9", "h264"};
    std::vector<std::string> audio_codecs{"opus", "pcmu", "pcma", "g722"};
    IceOptions ice;
    unsigned max_bitrate_kbps = 0;  ///< 0 = no limit; also written as b=AS / b=TIAS
    unsigned min_bitrate_kbps = 0;
    unsigned start_bitrate_kbps = 0;    ///< 0 = chosen from max/min (default 1000 for video)
    std::string data_label;             ///< non-empty: an ordered data channel with this label
    double stats_interval_s = 1.0;      ///< 0 = no periodic stats
    double ice_timeout_s = 10.0;        ///< remote unheard of this long: Network error
    double media_timeout_s = 0.0;       ///< 0 = off; nothing received this long: NoMedia error
    DtlsKey dtls_key = DtlsKey::Ecdsa;  ///< a new certificate per endpoint
};

/// Why a call ended. code is meaningful only when !clean.
struct CallEnd {
    bool clean = true;
    ErrorCode code = ErrorCode::Runtime;
    std::string message;
};

/// Counters a caller can read at the end of a call.
struct CallSummary {
    unsigned long long video_frames_decoded = 0;
    unsigned long long audio_frames_decoded = 0;
    unsigned long long video_frames_sent = 0;
    unsigned long long audio_frames_sent = 0;
    unsigned long long data_messages_sent = 0;
    unsigned long long data_messages_received = 0;
    unsigned long long bytes_received = 0;  ///< RTP payload and headers of received media
    long long packets_lost = 0;             ///< as the last statistics reported it
    unsigned video_target_kbps = 0;         ///< what the video encoder is asked for now
};

class WebRtcEndpoint : public Element {
  public:
    struct Callbacks {
        /// The complete local description (ICE gathering finished), as SDP text.
        std::function<void(const std::string& sdp)> local_description;
        /// The data channel opened, ours or the peer's (its label): send_data() works from now on.
        std::function<void(const std::string& label)> data_open;
        /// A text message arrived on the data channel.
        std::function<void(const std::string& message)> data_message;
        /// Something the user should know that does not end the call (a track that never came).
        std::function<void(const std::string& message)> warning;
        /// The peer can decrypt what we send: a held Source (a file, stdin) may start now.
        /// Its first key frame, which passthrough cannot make again, then reaches the peer.
        std::function<void()> ready_to_send;
        /// The call is over (with our goodbye, RTCP BYE, when the peer was ever reached and
        /// checked out). The caller then stops the Pipeline, which finishes what the endpoint
        /// gave downstream.
        std::function<void(const CallEnd& end)> ended;
    };

    /// Builds webrtcbin and its options. Throws Error(InvalidArgument or MissingPlugin) on a
    /// bad option. Events go to events (which must outlive the endpoint). Connect the sources
    /// in before Pipeline::start(), then call start(). Destroy it after its Pipeline. Call
    /// from the loop's thread.
    WebRtcEndpoint(WebRtcOptions options, Callbacks callbacks, EventWriter& events);
    ~WebRtcEndpoint() override;

    /// After Pipeline::start(). Offerer: creates the offer (an m-line per kind of each source
    /// connected in); local_description fires when gathering completes. Answerer: waits for
    /// set_remote_description().
    void start();

    /// Applies the peer's description. Throws Error(BadInput) for malformed SDP (naming the line),
    /// Error(Negotiation) for a missing fingerprint or no common codec.
    void set_remote_description(const std::string& sdp);

    /// Sends a text message on the data channel; false when it is not open.
    bool send_data(const std::string& message);
    /// Whether a data channel is to open: ours (options.data_label), or, once the peer's
    /// description is set, one it carries. Call from the loop's thread.
    bool data_expected() const;

    /// Ends the call cleanly: closes the data channel, says goodbye (RTCP BYE), then fires
    /// ended with clean = true. A second call ends it at once (the caller's Pipeline::stop()
    /// is then called a second time too, to stop without finishing the files).
    void stop();

    /// The pipeline failed outside the endpoint (a file to send or to write): ends the call
    /// with that error, with a goodbye if the pipeline still runs.
    void abort(const Error& error);

    CallSummary summary() const;

    struct Impl;  ///< private to libkms

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace kms
