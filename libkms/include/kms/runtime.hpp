// Process-wide start-up of the media stack, and checks that what a tool needs is installed.
#pragma once

#include <string>
#include <vector>

namespace kms {

/// Initialise GStreamer (and everything that depends on it) once per process. Safe to call again.
void init();

/// How much of the libraries' own GLib logging (libnice, GStreamer plugins) reaches stderr:
/// below 1 (normal and --quiet) only criticals and errors, from 1 (-v) everything. kms's own
/// messages do not go through GLib logging and are not affected.
void set_library_verbosity(int verbose);

/// A GStreamer element a feature needs, and the Debian package that ships it.
struct PluginNeed {
    std::string element;
    std::string package;
};

/// Throws Error(MissingPlugin) naming every missing element and its package.
void require_elements(const std::vector<PluginNeed>& needs);

/// True when the element factory is installed.
bool has_element(const std::string& element);

/// Files to remove if the process ends by _exit before their owner is done with them: a hidden
/// staging file, or a file made for output that no media reached yet (removed only while it is
/// empty). Returns a slot for forget_at_exit(), or -1 when all 16 are taken.
int remove_at_exit(const std::string& path, bool only_if_empty);
/// The owner is done with the file: it is no longer removed.
void forget_at_exit(int slot);
/// Removes the files still registered. Async-signal-safe: a signal handler or a watchdog
/// thread calls it just before _exit().
void remove_registered_files() noexcept;

}  // namespace kms
