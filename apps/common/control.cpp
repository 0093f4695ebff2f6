#include "common/control.hpp"

#include <chrono>
#include <cmath>

namespace kms::app {

std::unique_ptr<ControlServer> serve_control(Tool& tool, const std::string& path,
                                             std::function<Json()> state) {
    if (path.empty()) return nullptr;
    const auto started = std::chrono::steady_clock::now();
    auto answer = [&tool, state = std::move(state), started](const std::string& request) {
        auto own = [&] {
            Json s = state();
            s["tool"] = tool.name();
            s["uptime"] =
                std::round(std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
                               .count() *
                           1000) /
                1000;
            return s;
        };
        if (request == "stats")
            return Json{{"tool", tool.name()}, {"stats", tool.events().latest()}};
        if (request == "state") return own();
        if (request.empty() || request == "all")
            return Json{{"tool", tool.name()}, {"state", own()}, {"stats", tool.events().latest()}};
        return Json{{"error", "unknown request '" + request + "': stats, state or all"}};
    };
    auto server = std::make_unique<ControlServer>(path, answer);
    tool.events().emit("control", Json{{"path", path}});
    tool.say(1, "control socket " + path);
    return server;
}

void add_control_option(CLI::App& app, std::string& path) {
    app.add_option("--control", path,
                   "Answer on a UNIX socket at PATH (mode 0600) with statistics and state as "
                   "JSON: kms-stats --attach PATH")
        ->option_text("PATH");
}

}  // namespace kms::app
