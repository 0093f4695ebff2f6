// kms-call's media: the --send sources and the -o sink around the WebRtcEndpoint, joined in one
// Pipeline as Source -> WebRtcEndpoint -> Sink.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kms/pipeline.hpp"
#include "kms/sink.hpp"
#include "kms/source.hpp"
#include "kms/webrtc_endpoint.hpp"

namespace kms::app {

struct CallMedia {
    std::vector<MediaUri> send;       ///< --send, in order: each source gets m-lines of its own
    MediaUri output;                  ///< -o
    unsigned long long min_free = 0;  ///< --min-free: the disk guard of a file (SinkOptions)
    std::vector<std::unique_ptr<Source>> sources;
    std::unique_ptr<Sink> sink;
};

/// Reads --send and -o, refusing what kms-call cannot use (Error(InvalidArgument)), and cuts
/// w's codec lists to what -o's container holds (Error(Io) when none fits a kind it receives).
CallMedia parse_call_media(const std::vector<std::string>& send, const std::string& output,
                           WebRtcOptions& w);

/// Makes the sources (a file is probed now; files and stdin are held until the peer can
/// decrypt what we send) and the sink. Errors name the option ("--send FILE: ...").
void open_call_media(CallMedia& m, const WebRtcOptions& w);

/// Each source into ep (in --send order: the order of the m-lines), and ep into the sink.
void connect_call_media(Pipeline& p, CallMedia& m, WebRtcEndpoint& ep);

/// The held sources start (WebRtcEndpoint::Callbacks::ready_to_send).
void release_call_media(CallMedia& m);

}  // namespace kms::app
