// --control PATH for kms-call and kms-record: a control socket (kms/control.hpp) that answers
// "stats" with the newest event of each kind (every stream's latest inbound-rtp, ...) and
// "state" with what the tool says of itself. kms-stats --attach reads it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/tool.hpp"
#include "kms/control.hpp"

namespace kms::app {

/// Listens on path (none when path is empty). Call from the main loop's thread.
std::unique_ptr<ControlServer> serve_control(Tool& tool, const std::string& path,
                                             std::function<Json()> state);

/// Adds --control PATH to app's options.
void add_control_option(CLI::App& app, std::string& path);

}  // namespace kms::app
