#include "attach.hpp"

#include <cstdio>
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
        std::fprintf(out, "  %-18s %-5s", type.c_str(), e.value("kind", "").c_str());
        for (const char* f : {"packetsReceived", "packetsSent", "bytesReceived", "bytesSent",
                              "packetsLost", "jitter", "roundTripTime", "framesDecoded",
                              "framesPerSecond", "currentRoundTripTime"})
            if (e.contains(f)) std::fprintf(out, "  %s=%s", f, e[f].dump().c_str());
        std::fprintf(out, "\n");
    }
    std::fflush(out);
}

}  // namespace

int run_attach(app::Tool& tool, const std::string& path, double interval_s, Summariser* collect) {
    const bool json = tool.common().json;
    // Rates (bitrate, frame rate) come from two reads: an assertion reads a second time.
    const bool until_second = collect && tool.common().duration <= 0;
    if (collect && interval_s <= 0) interval_s = 1;
    auto read_once = [&] {
        const Json snap = control_request(path, "all");
        if (snap.contains("error"))
            throw Error(ErrorCode::BadInput, path + ": " + snap["error"].get<std::string>());
        tool.events().emit("attach", Json{{"path", path}});
        if (collect)
            for (const auto& e : snap.value("stats", Json::array())) collect->add_line(e.dump());
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
    unsigned reads = 1;
    tool.handle_signals(loop, [&] { loop.quit(); });
    if (tool.common().duration > 0)
        loop.after(static_cast<unsigned>(tool.common().duration * 1000), [&] { loop.quit(); });
    loop.every(static_cast<unsigned>(interval_s * 1000), [&] {
        try {
            read_once();
            if (++reads >= 2 && until_second) {
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
