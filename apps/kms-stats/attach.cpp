#include "attach.hpp"

#include <cstdio>
#include <map>
#include <optional>

#include "kms/control.hpp"
#include "kms/loop.hpp"

namespace kms::stats {

namespace {

// One line per stream for people: its kind and the counters that say it is alive.
void print_snapshot(std::FILE* out, const Json& snap) {
    const Json state = snap.value("state", Json::object());
    std::fprintf(out, "%s  %s", snap.value("tool", "?").c_str(), state.value("state", "").c_str());
    for (const char* f : {"bytesReceived", "bytesWritten", "packetsLost", "uptime"})
        if (state.contains(f) && !state[f].is_null())
            std::fprintf(out, "  %s=%s", f, state[f].dump().c_str());
    std::fprintf(out, "\n");
    for (const auto& e : snap.value("stats", Json::array())) {
        const std::string type = e.value("type", "");
        if (type != "inbound-rtp" && type != "outbound-rtp" && type != "remote-inbound-rtp" &&
            type != "candidate-pair")
            continue;
        // The counters as the tool has them (W3C: packetsLost may be below 0 with duplicates).
        std::string fields;
        for (const char* f : {"packetsReceived", "packetsSent", "bytesReceived", "bytesSent",
                              "packetsLost", "jitter", "roundTripTime", "framesDecoded",
                              "framesPerSecond", "currentRoundTripTime"})
            if (e.contains(f)) fields += std::string("  ") + f + "=" + e[f].dump();
        if (fields.empty()) continue;  // a candidate pair before its first check: nothing to say
        std::fprintf(out, "  %-18s %-5s%s\n", type.c_str(), e.value("kind", "").c_str(),
                     fields.c_str());
    }
    std::fflush(out);
}

}  // namespace

int run_attach(app::Tool& tool, const std::string& path, double interval_s, Summariser* collect) {
    const bool json = tool.common().json;
    // Rates (bitrate, frame rate) need each stream's statistics twice: an assertion reads
    // until every stream's newest stats event is newer than at the first read. The tool makes
    // them on its own timer (--stats-interval), so two reads a second apart may see the same.
    const bool until_fresh = collect && tool.common().duration <= 0;
    constexpr unsigned kMaxReads = 8;
    if (collect && interval_s <= 0) interval_s = 1;
    std::map<std::string, double> first_seen;  // "type ssrc" -> timestamp at the first read
    bool fresh = false;
    unsigned reads = 0;
    auto read_once = [&] {
        const Json snap = control_request(path, "all");
        if (snap.contains("error"))
            throw Error(ErrorCode::BadInput, path + ": " + snap["error"].get<std::string>());
        tool.events().emit("attach", Json{{"path", path}});
        bool all_newer = true, any = false;
        for (const auto& e : snap.value("stats", Json::array())) {
            if (collect) collect->add_line(e.dump());
            const std::string type = e.value("type", "");
            if (type != "inbound-rtp" && type != "outbound-rtp") continue;
            const std::string key = type + " " + e.value("ssrc", Json(0)).dump();
            const double t = e.value("timestamp", 0.0);
            any = true;
            if (reads == 0)
                first_seen[key] = t;
            else if (auto it = first_seen.find(key); it != first_seen.end() && t <= it->second)
                all_newer = false;
        }
        fresh = reads > 0 && any && all_newer;
        ++reads;
        if (json)
            std::printf("%s\n", snap.dump().c_str());
        else if (!tool.common().quiet)  // -q: the events (--events) and the exit status only
            print_snapshot(stdout, snap);
        std::fflush(stdout);
    };
    read_once();
    if (interval_s <= 0) return app::kOk;
    Loop loop;
    std::optional<Error> failure;
    tool.handle_signals(loop, [&] { loop.quit(); });
    if (tool.common().duration > 0)
        loop.after(static_cast<unsigned>(tool.common().duration * 1000), [&] { loop.quit(); });
    loop.every(static_cast<unsigned>(interval_s * 1000), [&] {
        try {
            read_once();
            if (until_fresh && (fresh || reads >= kMaxReads)) {
                if (!fresh)
                    tool.say(-1, path + ": its statistics did not change over " +
                                     std::to_string(reads) + " reads");
                loop.quit();
                return false;
            }
            return true;
        } catch (const Error& e) {
            // The tool has ended since the last read: what it said is already printed.
            if (e.code() == ErrorCode::Network) {
                tool.say(0, path + ": the tool is gone after " + std::to_string(reads) + " reads");
            } else {
                failure = e;
            }
            loop.quit();
            return false;
        }
    });
    loop.run();
    if (failure) throw *failure;
    return app::kOk;
}

}  // namespace kms::stats
