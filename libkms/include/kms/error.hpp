// kms::Error: the one exception type libkms throws on set-up and control paths.
#pragma once

#include <stdexcept>
#include <string>

namespace kms {

/// What kind of failure an Error is. Each maps to one exit status (apps/common/exit.hpp).
enum class ErrorCode {
    Runtime,          ///< anything not covered below
    InvalidArgument,  ///< a bad option value, an unknown URI scheme
    BadInput,         ///< malformed SDP, unreadable media, bad JSON
    Network,          ///< ICE failed, timeouts, remote gone
    Negotiation,      ///< no common codec, DTLS/fingerprint failure
    NoMedia,          ///< nothing flowed within the media timeout
    Io,               ///< cannot write output: disk full, permission, broken pipe
    MissingPlugin,    ///< a GStreamer plugin or system component is not installed
};

/// Readable name of a code, e.g. "network".
const char* to_string(ErrorCode code) noexcept;

class Error : public std::runtime_error {
  public:
    Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ErrorCode code() const noexcept { return code_; }

  private:
    ErrorCode code_;
};

}  // namespace kms
