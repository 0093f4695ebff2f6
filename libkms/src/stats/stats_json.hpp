// webrtcbin's statistics in the W3C webrtc-stats spelling (cli-contract.md, "Events").
#pragma once

#include <string>
#include <string_view>

#include <gst/gst.h>

#include "kms/events.hpp"

namespace kms::stats {

/// "packets-lost" -> "packetsLost"
std::string camel_case(std::string_view kebab);

/// The nick of an enum value ("connected"), or "unknown".
const char* enum_nick(GType type, int value);

/// One GstStructure of webrtcbin's get-stats as JSON with W3C names; nested structures are left
/// out, and so are "type" and "timestamp" (the event writer sets its own).
Json stats_to_json(const GstStructure* s);

}  // namespace kms::stats
