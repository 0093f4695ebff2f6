#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kms/error.hpp"
#include "kms/events.hpp"

namespace kms {

EventWriter::~EventWriter() {
    if (out_ && owned_) std::fclose(out_);
}

void EventWriter::open(const std::string& destination) {
    std::lock_guard lock(mutex_);
    if (destination == "-") {
        out_ = stdout;
        owned_ = false;
        return;
    }
    if (destination.rfind("fd:", 0) == 0) {
        char* end = nullptr;
        long fd = std::strtol(destination.c_str() + 3, &end, 10);
        if (*end != '\0' || fd < 0)
            throw Error(ErrorCode::InvalidArgument,
                        "--events " + destination + ": not a file descriptor number");
        out_ = fdopen(static_cast<int>(fd), "w");
        if (!out_)
            throw Error(ErrorCode::Io, "--events " + destination + ": " + std::strerror(errno));
        owned_ = true;
        return;
    }
    out_ = std::fopen(destination.c_str(), "w");
    if (!out_)
        throw Error(ErrorCode::Io,
                    "cannot write events to " + destination + ": " + std::strerror(errno));
    owned_ = true;
}

void EventWriter::emit(const std::string& type, const Json& fields) {
    std::lock_guard lock(mutex_);
    Json line;
    line["type"] = type;
    // Keep one decimal of a millisecond, like browsers' RTCStats timestamps.
    line["timestamp"] = std::round(now_ms() * 10.0) / 10.0;
    // "type" and "timestamp" are the writer's: a field of the same name must not hide them.
    for (auto it = fields.begin(); it != fields.end(); ++it)
        if (it.key() != "type" && it.key() != "timestamp") line[it.key()] = it.value();
    std::string key = type;
    for (const char* f : {"id", "ssrc", "kind", "mid"})
        if (auto it = fields.find(f); it != fields.end()) key += "|" + it->dump();
    latest_[key] = line;
    if (!out_) return;
    std::string text = line.dump(-1, ' ', false, Json::error_handler_t::replace);
    text += '\n';
    std::fwrite(text.data(), 1, text.size(), out_);
    // One event per line, visible at once to `jq` or `tail -f` readers.
    std::fflush(out_);
}

Json EventWriter::latest() const {
    std::lock_guard lock(mutex_);
    Json out = Json::array();
    for (const auto& [key, event] : latest_) out.push_back(event);
    return out;
}

}  // namespace kms
