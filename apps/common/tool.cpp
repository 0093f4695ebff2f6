#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/tool.hpp"

#include "common/secrets.hpp"
#include "kms/runtime.hpp"
#include "kms/version.hpp"

namespace kms::app {

Tool::Tool(ToolInfo info) : info_(info), app_(info.summary, info.name) {
    // Two malloc arenas, not glibc's eight a core: each GStreamer streaming thread would get
    // one of its own, mostly empty, and a host running fifty recorders pays for each. The
    // threads allocate little per buffer, so they hardly contend. MALLOC_ARENA_MAX or
    // GLIBC_TUNABLES=glibc.malloc.arena_max=N still rules when set. Measured with
    // scripts/bench/record_parallel (see README, Speed).
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    if (!std::getenv("MALLOC_ARENA_MAX") &&
        !(tunables && std::strstr(tunables, "glibc.malloc.arena_max=")))
        mallopt(M_ARENA_MAX, 2);
    app_.set_help_flag("-h,--help", "Print this help and exit");
    app_.set_version_flag(
        "--version", [this] { return version_line(); }, "Print the version and exit");
    app_.add_flag("--json", common_.json, "Write the result on stdout as JSON");
    app_.add_flag("-v,--verbose", common_.verbose,
                  "More messages on stderr (repeatable; GST_DEBUG=kms*:N works too)");
    app_.add_flag("-q,--quiet", common_.quiet, "Only errors and warnings on stderr");
    app_.add_option("-t,--duration", common_.duration,
                    "Stop by itself after SECONDS, as on SIGTERM (0: no limit)")
        ->check(seconds_check(true))
        ->option_text("SECONDS");
    app_.add_option("--events", common_.events,
                    "JSON-lines event stream to FILE, - (stdout) or fd:N")
        ->option_text("FILE|-");
    // 8 is kms-stats --assert's alone.
    const bool asserts = std::string(info.name) == "kms-stats";
    app_.footer(std::string("EXAMPLES\n") + info.examples +
                "\nEXIT STATUS\n  0 ok, 1 failure, 2 usage, 3 bad input, 4 network, 5 negotiation "
                "refused,\n  6 no media, 7 output failure, " +
                (asserts ? "8 assertion failed, " : "") +
                "69 missing component, 130 aborted.\nSee man " + info.name + " for everything.");
    app_.get_formatter()->column_width(34);
    tty_ = isatty(STDERR_FILENO) == 1;
}

std::string Tool::version_line() const {
    init();
    return std::string(info_.name) + " " + version() + " (libkms " + version() + ", GStreamer " +
           gstreamer_version() + ")";
}

int Tool::run(int argc, char** argv, const std::function<int()>& body) {
    // CLI11 quotes arguments in its errors: a mistyped option before a password shows it.
    const std::set<std::string> secrets = secrets_of(argc, argv, secret_options_);
    try {
        app_.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app_.exit(e);  // --help and --version print on stdout, exit 0
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "%s: %s\nTry '%s --help'.\n", info_.name,
                     hide(e.what(), secrets).c_str(), info_.name);
        return kUsage;
    }
    if (common_.quiet) common_.verbose = -1;
    set_library_verbosity(common_.verbose);
    try {
        if (!common_.events.empty()) events_.open(common_.events);
        return body();
    } catch (const Error& e) {
        end_progress();
        std::fprintf(stderr, "%s: %s\n", info_.name, hide(e.what(), secrets).c_str());
        if (json_errors_ && common_.json && !result_printed_) {
            std::printf("%s\n",
                        Json{{"result", to_string(e.code())}, {"error", hide(e.what(), secrets)}}
                            .dump()
                            .c_str());
            std::fflush(stdout);
        }
        return exit_code_for(e.code());
    } catch (const std::exception& e) {
        end_progress();
        std::fprintf(stderr, "%s: %s\n", info_.name, hide(e.what(), secrets).c_str());
        return kFailure;
    }
}

void Tool::say(int level, const std::string& message) const {
    if (level > common_.verbose) return;
    std::fprintf(stderr, "%s: %s\n", info_.name, message.c_str());
}

namespace {

// SIGINT/SIGTERM: the first wakes a thread that asks the main loop to stop; a later one exits 130
// from the handler itself, so it works even when the main thread is stuck (write, _exit and
// clock_gettime are async-signal-safe; nothing else is used here). A repeat within kRepeatNs of
// the first is the same stop sent twice, not a second one: timeout(1) signals its child and then
// its whole process group, so `timeout 3600 kms-record ...` in a crontab delivers two at once.
constexpr int64_t kRepeatNs = 100'000'000;
std::atomic<int64_t> g_first_signal{0};  // CLOCK_MONOTONIC ns of the first signal; 0: none yet
static_assert(std::atomic<int64_t>::is_always_lock_free, "a signal handler needs it lock-free");
int g_wake[2] = {-1, -1};
char g_aborted[96];
size_t g_aborted_len = 0;

void on_stop_signal(int) {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    const int64_t now = int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec + 1;  // never 0
    int64_t first = 0;
    if (!g_first_signal.compare_exchange_strong(first, now)) {
        if (now - first < kRepeatNs) return;
        if (g_aborted_len) (void)!::write(STDERR_FILENO, g_aborted, g_aborted_len);
        remove_registered_files();  // no hidden staging file or empty output left behind
        _exit(kAborted);
    }
    const char c = 1;
    (void)!::write(g_wake[1], &c, 1);
}

}  // namespace

void Tool::catch_signals() {
    if (g_wake[0] >= 0) return;
    if (::pipe2(g_wake, O_CLOEXEC) != 0)
        throw Error(ErrorCode::Runtime, std::string("pipe: ") + std::strerror(errno));
    g_aborted_len = static_cast<size_t>(std::snprintf(
        g_aborted, sizeof g_aborted, "%s%s: aborted\n", tty_ ? "\r\033[K" : "", info_.name));
    g_aborted_len = std::min(g_aborted_len, sizeof g_aborted - 1);
    // Installed over whatever was inherited: a shell script's `cmd &` starts us with SIGINT
    // ignored, and a signal that comes while we start up must still stop the call.
    struct sigaction sa = {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    // A closed reader of stdout must surface as an output error, not kill us silently.
    ::signal(SIGPIPE, SIG_IGN);
}

void Tool::handle_signals(Loop&, std::function<void()> stop) {
    catch_signals();
    // A signal caught before now waits in the pipe and stops the call as soon as the loop runs.
    std::thread([this, stop] {
        char c;
        for (;;) {
            const ssize_t n = ::read(g_wake[0], &c, 1);
            if (n < 0 && errno == EINTR) continue;
            if (n != 1) return;
            post_to_main([this, stop] {
                end_progress();
                say(0, "stopping (signal again to abort)");
                stop();
            });
        }
    }).detach();
}

void Tool::stop_deadline(double seconds, int code, const std::string& message) {
    if (deadline_armed_) return;
    deadline_armed_ = true;
    {
        std::lock_guard lock(deadline_->mutex);
        if (deadline_->line.empty()) {
            deadline_->code = code;
            deadline_->line = std::string(info_.name) + ": " + message + "\n";
        }
    }
    std::thread([seconds, d = deadline_] {
        std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
        std::lock_guard lock(d->mutex);
        (void)!::write(STDERR_FILENO, d->line.data(), d->line.size());
        remove_registered_files();
        _exit(d->code);
    }).detach();
}

void Tool::deadline_outcome(int code, const std::string& message) {
    std::lock_guard lock(deadline_->mutex);
    deadline_->code = code;
    deadline_->line = std::string(info_.name) + ": " + message + "\n";
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

CLI::Validator seconds_check(bool zero_ok) {
    return CLI::Validator(
        [zero_ok](std::string& text) -> std::string {
            char* end = nullptr;
            const double v = std::strtod(text.c_str(), &end);
            // At most about 46 days: the timers take milliseconds in 32 bits.
            if (text.empty() || *end || !(v > 0 || (zero_ok && v == 0)) || v > 4e6)
                return zero_ok ? "must be a number of seconds, 0 or more"
                               : "must be a positive number of seconds";
            return {};
        },
        "SECONDS");
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

// "500k", "10M", "2G" or plain bytes (powers of 1000, as df -H and disk makers count).
unsigned long long parse_size(const std::string& text, const char* option, bool zero_ok) {
    size_t used = 0;
    double v = 0;
    try {
        v = std::stod(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    std::string unit = text.substr(used);
    double mult = unit.empty() || unit == "B"                  ? 1
                  : unit == "k" || unit == "K" || unit == "kB" ? 1e3
                  : unit == "M" || unit == "MB"                ? 1e6
                  : unit == "G" || unit == "GB"                ? 1e9
                                                               : -1;
    if (used == 0 || mult < 0 || v < 0 || (v == 0 && !zero_ok))
        throw Error(ErrorCode::InvalidArgument,
                    std::string(option) + " " + text + ": expected a size such as 500k, 10M or 2G");
    return static_cast<unsigned long long>(v * mult);
}

}  // namespace kms::app
