// One output object for results: each call names the JSON key and the text label together, so
// the text and --json forms cannot drift apart (after iproute2's print_* API).
#pragma once

#include <cstdio>
#include <string>

#include "kms/events.hpp"

namespace kms::app {

class Output {
  public:
    explicit Output(bool json, std::FILE* out = stdout) : json_(json), out_(out) {}

    /// Adds key = value; text form prints "label: value".
    void field(const std::string& key, const std::string& label, const Json& value);
    /// A nested object; text form prints "label:" then its fields indented.
    void object(const std::string& key, const std::string& label, const Json& value);

    /// Writes the JSON object (in JSON mode); text was written as it came.
    /// A field only JSON readers get (text readers were shown it another way, e.g. live).
    void json_only(const std::string& key, const Json& value) {
        if (json_) doc_[key] = value;
    }
    void finish();

  private:
    bool json_;
    std::FILE* out_;
    Json doc_ = Json::object();
};

/// A JSON value as people read it: strings bare, numbers rounded sensibly.
std::string to_text(const Json& value);

}  // namespace kms::app
