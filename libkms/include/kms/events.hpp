// The JSON-lines event stream every tool shares (cli-contract.md, "Events").
#pragma once

#include <cstdio>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace kms {

using Json = nlohmann::ordered_json;

/// Milliseconds since the Unix epoch, as W3C RTCStats timestamps.
double now_ms();

/// Writes one JSON object per line: {"type":..., "timestamp":..., fields...}. Thread-safe.
/// A writer with no destination drops events, so callers need not check.
class EventWriter {
  public:
    EventWriter() = default;
    ~EventWriter();
    EventWriter(const EventWriter&) = delete;
    EventWriter& operator=(const EventWriter&) = delete;

    /// "-" is stdout, "fd:N" an open descriptor, anything else a file (truncated).
    /// Throws Error(Io) when the file cannot be opened.
    void open(const std::string& destination);
    bool enabled() const { return out_ != nullptr; }

    /// One line: {"type": type, "timestamp": ms, ...fields}; fields named type or timestamp are
    /// left out.
    void emit(const std::string& type, const Json& fields = Json::object());

    /// The newest event of each kind, in the order of their names: one per type, and within a type
    /// one per id, SSRC or kind (so every stream's latest inbound-rtp). Kept whether or not events
    /// are written anywhere; a control socket answers with it.
    Json latest() const;

  private:
    mutable std::mutex mutex_;
    std::map<std::string, Json> latest_;
    std::FILE* out_ = nullptr;
    bool owned_ = false;
};

}  // namespace kms
