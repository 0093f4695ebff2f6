#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "common/tool.hpp"
#include "kms/runtime.hpp"
#include "kms/version.hpp"

namespace kms::app {

Tool::Tool(ToolInfo info) : info_(info), app_(info.summary, info.name) {
    app_.set_help_flag("-h,--help", "Print this help and exit");
    app_.set_version_flag(
        "--version", [this] { return version_line(); }, "Print the version and exit");
    app_.add_flag("--json", common_.json, "Write the result on stdout as JSON");
    app_.add_flag("-v,--verbose", common_.verbose,
                  "More messages on stderr (repeatable; GST_DEBUG=kms*:N works too)");
    app_.add_flag("-q,--quiet", common_.quiet, "Only errors on stderr");
    app_.add_option("-t,--duration", common_.duration,
                    "Stop by itself after SECONDS, as on SIGTERM")
        ->check(CLI::NonNegativeNumber)
        ->option_text("SECONDS");
    app_.add_option("--events", common_.events,
                    "JSON-lines event stream to FILE, - (stdout) or fd:N")
        ->option_text("FILE|-");
    app_.footer(std::string("EXAMPLES\n") + info.examples +
                "\nEXIT STATUS\n  0 ok, 1 failure, 2 usage, 3 bad input, 4 network, 5 negotiation "
                "refused,\n"
                "  6 no media, 7 output failure, 69 missing component, 130 aborted.\n"
                "See man " +
                info.name + " for everything.");
    app_.get_formatter()->column_width(34);
    tty_ = isatty(STDERR_FILENO) == 1;
}

std::string Tool::version_line() const {
    init();
    return std::string(info_.name) + " " + version() + " (libkms " + version() + ", GStreamer " +
           gstreamer_version() + ")";
}

int Tool::run(int argc, char** argv, const std::function<int()>& body) {
    try {
        app_.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app_.exit(e);  // --help and --version print on stdout, exit 0
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "%s: %s\nTry '%s --help'.\n", info_.name, e.what(), info_.name);
        return kUsage;
    }
    if (common_.quiet) common_.verbose = -1;
    try {
        if (!common_.events.empty()) events_.open(common_.events);
        return body();
    } catch (const Error& e) {
        end_progress();
        std::fprintf(stderr, "%s: %s\n", info_.name, e.what());
        return exit_code_for(e.code());
    } catch (const std::exception& e) {
        end_progress();
        std::fprintf(stderr, "%s: %s\n", info_.name, e.what());
        return kFailure;
    }
}

void Tool::say(int level, const std::string& message) const {
    if (level > common_.verbose) return;
    std::fprintf(stderr, "%s: %s\n", info_.name, message.c_str());
}

void Tool::handle_signals(Loop& loop, std::function<void()> stop) {
    auto count = std::make_shared<int>(0);
    auto handler = [this, count, stop] {
        if (++*count > 1) {
            end_progress();
            std::fprintf(stderr, "%s: aborted\n", info_.name);
            std::fflush(stdout);  // stdin's lock may be held by a reader thread
            _exit(kAborted);
        }
        say(0, "stopping (signal again to abort)");
        stop();
    };
    loop.on_signal(SIGINT, handler);
    loop.on_signal(SIGTERM, handler);
    // A closed reader of stdout must surface as an output error, not kill us silently.
    ::signal(SIGPIPE, SIG_IGN);
}

void Tool::progress(const std::string& line) {
    if (!tty_ || common_.quiet) return;
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    progress_shown_ = true;
}

void Tool::end_progress() {
    if (!progress_shown_) return;
    std::fprintf(stderr, "\r\033[K");
    progress_shown_ = false;
}

void parse_port_range(const std::string& text, unsigned& lo, unsigned& hi) {
    size_t dash = text.find('-');
    try {
        if (dash == std::string::npos) throw std::invalid_argument("");
        size_t a = 0, b = 0;
        unsigned long l = std::stoul(text.substr(0, dash), &a);
        unsigned long h = std::stoul(text.substr(dash + 1), &b);
        if (a != dash || b != text.size() - dash - 1 || l < 1 || h > 65535 || l > h)
            throw std::invalid_argument("");
        lo = static_cast<unsigned>(l);
        hi = static_cast<unsigned>(h);
    } catch (const std::logic_error&) {
        throw Error(ErrorCode::InvalidArgument,
                    "--port-range '" + text + "': expected LO-HI with 1 <= LO <= HI <= 65535");
    }
}

}  // namespace kms::app
