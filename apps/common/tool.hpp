// What every kms tool shares: the common options, --version, messages on stderr, the mapping of
// errors to exit codes, signals, and the TTY-only progress line.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/exit_codes.hpp"
#include "kms/events.hpp"
#include "kms/loop.hpp"

namespace kms::app {

struct CommonOptions {
    bool json = false;
    int verbose = 0;
    bool quiet = false;
    double duration = 0;  ///< seconds; 0 = until stopped
    std::string events;   ///< "" none, "-" stdout, a path, or fd:N
};

/// The tool's identity, used in --version and in every message.
struct ToolInfo {
    const char* name;      ///< "kms-call"
    const char* summary;   ///< one line for --help
    const char* examples;  ///< the EXAMPLES block of --help, one example per mode
};

class Tool {
  public:
    explicit Tool(ToolInfo info);

    CLI::App& app() { return app_; }
    CommonOptions& common() { return common_; }
    const char* name() const { return info_.name; }
    EventWriter& events() { return events_; }

    /// "kms-call 0.1.0 (libkms 0.1.0, GStreamer 1.22.0)"
    std::string version_line() const;

    /// Parses argv and runs body; returns the exit status. kms::Error and CLI11 errors become the
    /// documented codes with a message on stderr.
    int run(int argc, char** argv, const std::function<int()>& body);
    /// With --json, an Error that ends body before result_printed() is also written to stdout
    /// as {"result": its kind, "error": ...}: a script piping into jq gets its one object.
    /// Call before run().
    void json_errors() { json_errors_ = true; }
    /// The --json result is on stdout: later errors are in it.
    void result_printed() { result_printed_ = true; }

    /// A message for people on stderr, shown at verbosity >= level (0 = normal, -1 = even with -q).
    void say(int level, const std::string& message) const;
    void error(const std::string& message) const { say(-1, std::string("error: ") + message); }

    /// Catches SIGINT/SIGTERM from now on, before there is anything to stop: the first is kept
    /// for handle_signals(), a second exits 130 at once. Call it first thing in main.
    void catch_signals();

    /// Options whose values are secrets (--turn-password): no message of run() shows them, and
    /// neither does it show the password of a USER:PASS@ URI on the command line.
    void secret_options(std::vector<std::string> options) { secret_options_ = std::move(options); }

    /// SIGINT/SIGTERM (also one caught earlier) call stop on the main loop; a second signal exits
    /// 130 at once, from the signal handler, whatever the main thread is doing.
    void handle_signals(Loop& loop, std::function<void()> stop);

    /// The last resort of a stop: if the process is still alive after seconds, prints message and
    /// exits with code, whatever any thread is doing. Only the first call arms it.
    void stop_deadline(double seconds, int code, const std::string& message);

    /// What the deadline exits with, when the call has ended with a failure of its own but its
    /// teardown is what hangs (a muxer blocked on a full output): the failure's code, not 1.
    void deadline_outcome(int code, const std::string& message);

    /// Draws a one-line status on stderr when it is a terminal and --quiet is off.
    void progress(const std::string& line);
    void end_progress();

  private:
    ToolInfo info_;
    CLI::App app_;
    CommonOptions common_;
    EventWriter events_;
    bool progress_shown_ = false;
    bool deadline_armed_ = false;
    struct Deadline {
        std::mutex mutex;
        int code = 1;
        std::string line;
    };
    std::shared_ptr<Deadline> deadline_ = std::make_shared<Deadline>();
    std::vector<std::string> secret_options_;
    bool tty_ = false;
    bool json_errors_ = false;
    bool result_printed_ = false;
};

/// A CLI11 check for a duration in seconds with a plain message ("must be a positive number of
/// seconds"), where CLI11's own range checks print the largest double in full.
CLI::Validator seconds_check(bool zero_ok);

/// Parses "LO-HI" into two ports; throws Error(InvalidArgument).
void parse_port_range(const std::string& text, unsigned& lo, unsigned& hi);

/// "500k", "10M", "2G" or plain bytes, in powers of 1000; throws Error(InvalidArgument) naming
/// option. Zero ("0", "0k") only when zero_ok.
unsigned long long parse_size(const std::string& text, const char* option, bool zero_ok = false);

}  // namespace kms::app
