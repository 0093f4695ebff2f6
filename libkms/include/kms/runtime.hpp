// Process-wide start-up of the media stack, and checks that what a tool needs is installed.
#pragma once

#include <string>
#include <vector>

namespace kms {

/// Initialise GStreamer (and everything that depends on it) once per process. Safe to call again.
void init();

/// A GStreamer element a feature needs, and the Debian package that ships it.
struct PluginNeed {
    std::string element;
    std::string package;
};

/// Throws Error(MissingPlugin) naming every missing element and its package.
void require_elements(const std::vector<PluginNeed>& needs);

/// True when the element factory is installed.
bool has_element(const std::string& element);

}  // namespace kms
