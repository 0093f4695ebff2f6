// kms-stats: the numbers behind a file, a live source or a call (issue 10). Probe measures a
// file or a source without decoding it; summarise reads the event stream of any kms tool; both
// answer --assert thresholds and write Prometheus textfiles; plot draws a call over time.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "assertions.hpp"
#include "attach.hpp"
#include "common/tool.hpp"
#include "kms/loop.hpp"
#include "live_table.hpp"
#include "probe.hpp"
#include "report.hpp"
#include "serve.hpp"
#include "summary.hpp"

namespace {

using namespace kms;
using namespace kms::app;
using namespace kms::stats;

constexpr const char* kExamples =
    "  # a file, measured: codec, size, frame rate, bitrate and peak, key frames, gaps\n"
    "  kms-stats talk.mp4\n"
    "  # ten seconds of a camera, as JSON\n"
    "  kms-stats -t 10 --json rtsp://cam.local/stream\n"
    "  # a call's events, summarised: bitrate, loss, jitter, round-trip time, set-up\n"
    "  kms-call answer --events call.jsonl ... ; kms-stats --events-in call.jsonl\n"
    "  # from cron: fail (exit 8) when a call lost too much or took too long to answer\n"
    "  kms-stats --events-in call.jsonl --assert 'loss < 1%' --assert 'rtt.p95 < 150ms'\n"
    "  # a Prometheus textfile for node_exporter\n"
    "  kms-stats --events-in call.jsonl --prometheus /var/lib/node_exporter/kms.prom\n"
    "  # a running call's statistics, every second (kms-call --control /tmp/call.sock)\n"
    "  kms-stats --attach /tmp/call.sock --interval 1\n"
    "  # the call over time, as a picture\n"
    "  kms-stats plot call.jsonl -o call.svg\n";

struct StatsOptions {
    std::string input;
    std::string events_in;
    std::vector<std::string> asserts;
    std::string prometheus;
    double gap = 0.5;
    std::string plot_events;
    std::string plot_output;
    bool follow = false;
    std::string serve_metrics;
    std::string attach;
    double interval = 0;
};

Summary read_summary(const std::string& path) {
    if (path.empty() || path == "-") return summarise(std::cin, "stdin");
    std::ifstream in(path);
    if (!in) throw Error(ErrorCode::BadInput, path + ": cannot be read");
    return summarise(in, path);
}

// --follow: the stream read as it grows, 5 times a second, with a live table on a terminal. A
// pipe ends when its writer closes it; a file when the tool writing it has said its last words
// (or on -t, SIGINT, SIGTERM), as tail -f would never know.
Summary follow(Tool& tool, const std::string& path, const std::string& serve) {
    const bool from_stdin = path.empty() || path == "-";
    const int fd = from_stdin ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(ErrorCode::BadInput, path + ": cannot be read");
    struct stat st = {};
    ::fstat(fd, &st);
    const bool regular = S_ISREG(st.st_mode);
    const int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    Summariser sum(from_stdin ? "stdin" : path);
    Loop loop;
    // Only where the one-line status of every tool would go (cli-contract.md): stderr, when it
    // is a terminal and --quiet is off. A pipe or a file never sees an escape sequence.
    std::optional<LiveTable> table;
    if (::isatty(STDERR_FILENO) == 1 && !tool.common().quiet) table.emplace(stderr);
    tool.handle_signals(loop, [&] {
        if (table) table->leave();  // "stopping" is written under it: drawing again would hide it
        loop.quit();
    });
    if (tool.common().duration > 0)
        loop.after(static_cast<unsigned>(tool.common().duration * 1000), [&] { loop.quit(); });
    std::unique_ptr<MetricsServer> server;
    if (!serve.empty()) {
        server =
            std::make_unique<MetricsServer>(serve, [&] { return summary_samples(sum.result()); });
        tool.events().emit("listening", Json{{"listen", serve}, {"url", server->url()}});
        tool.say(0, "serving " + server->url());
    }
    std::string pending;
    std::optional<Error> failure;
    auto grew = std::chrono::steady_clock::now();
    auto take = [&](bool all) {
        size_t nl;
        while ((nl = pending.find('\n')) != std::string::npos) {
            sum.add_line(pending.substr(0, nl));
            pending.erase(0, nl + 1);
        }
        if (!all || pending.empty()) return;
        sum.add_last_line(pending);
        pending.clear();
    };
    auto pump = [&]() -> bool {
        try {
            char buf[65536];
            for (;;) {
                const ssize_t n = ::read(fd, buf, sizeof buf);
                if (n > 0) {
                    grew = std::chrono::steady_clock::now();
                    pending.append(buf, static_cast<size_t>(n));
                    take(false);
                    continue;
                }
                if (n < 0 && errno == EINTR) continue;
                if (n < 0 && errno == EAGAIN) break;  // a pipe with nothing yet
                if (n < 0)
                    throw Error(ErrorCode::BadInput, sum.result().input + ": cannot be read");
                // The writer is gone, or has said it is done (or that it is stopping, and has
                // written nothing more for a second).
                if (!regular || sum.ended() ||
                    (sum.stopping() &&
                     std::chrono::steady_clock::now() - grew > std::chrono::seconds(1))) {
                    take(true);
                    loop.quit();
                    return false;
                }
                break;  // the end of the file for now
            }
        } catch (const Error& e) {
            failure = e;
            loop.quit();
            return false;
        }
        if (table) table->show(live_table(sum.result(), sum.status()));
        return true;
    };
    if (pump()) {
        loop.every(200, pump);
        loop.run();
    }
    // The last figures stay on the screen, above the summary.
    if (table && !failure) table->show(live_table(sum.result(), sum.status()), true);
    ::fcntl(fd, F_SETFL, flags);
    if (!from_stdin) ::close(fd);
    if (failure) throw *failure;
    return sum.result();
}

// Parses every --assert before anything is measured: a typo must not cost a ten-second probe.
std::vector<Assertion> parse_asserts(const StatsOptions& o, const std::vector<KnownMetric>& known) {
    std::vector<Assertion> out;
    for (const auto& text : o.asserts) {
        try {
            out.push_back(parse_assertion(text, known));
        } catch (const AssertSyntax& e) {
            throw Error(ErrorCode::InvalidArgument, caret_message(text, e));
        }
    }
    return out;
}

// Every assertion is checked and reported; the exit is 8 when any failed.
int check(Tool& tool, const std::vector<Assertion>& asserts, const Metrics& metrics) {
    int failed = 0;
    for (const auto& a : asserts) {
        const Verdict v = evaluate(a, metrics);
        if (!v.ok) {
            ++failed;
            tool.say(-1, "assertion failed: " + v.line);
        } else {
            tool.say(1, "assertion holds: " + v.line);
        }
    }
    return failed ? kAssert : kOk;
}

Json verdicts(const std::vector<Assertion>& asserts, const Metrics& metrics) {
    Json out = Json::array();
    for (const auto& a : asserts) {
        const Verdict v = evaluate(a, metrics);
        out.push_back(Json{{"assert", a.text},
                           {"ok", v.ok},
                           {"measured", v.measured ? Json(v.value) : Json(nullptr)}});
    }
    return out;
}

int run_probe(Tool& tool, const StatsOptions& o) {
    const auto asserts = parse_asserts(o, probe_metric_names());
    ProbeOptions po;
    po.input = o.input;
    po.duration = tool.common().duration;
    po.gap_threshold = o.gap;
    // The first SIGINT/SIGTERM ends a live measurement early, and the figures so far are kept.
    Loop loop;
    tool.handle_signals(loop, [&] { loop.quit(); });
    const ProbeResult r = probe(po, loop);
    // A file killed mid-write, or a download cut off: it plays, and ends early.
    if (r.cut_short())
        tool.say(0, "warning: " + r.input + " is cut short: its header says " +
                        seconds_text(*r.declared_duration) + ", the media in it lasts " +
                        seconds_text(r.duration));
    const Metrics metrics = probe_metrics(r);
    if (!o.prometheus.empty()) write_prometheus(o.prometheus, probe_samples(r));
    Json doc = probe_json(r);
    if (!asserts.empty()) doc["asserts"] = verdicts(asserts, metrics);
    tool.events().emit("probe", doc);
    if (tool.common().json) {
        std::printf("%s\n", doc.dump().c_str());
    } else if (!tool.common().quiet) {
        print_probe(stdout, r);
    }
    std::fflush(stdout);
    return check(tool, asserts, metrics);
}

int run_summary(Tool& tool, const StatsOptions& o) {
    const auto asserts = parse_asserts(o, summary_metric_names());
    if (o.events_in.empty() && ::isatty(STDIN_FILENO))
        throw Error(ErrorCode::InvalidArgument,
                    "nothing to read: give a FILE or URI to probe, --events-in FILE, or pipe "
                    "an event stream into stdin");
    const Summary s =
        o.follow ? follow(tool, o.events_in, o.serve_metrics) : read_summary(o.events_in);
    // Half an event and no end of line: a writer killed mid-line (a call under SIGKILL, a full
    // disk). What came before it stands.
    if (s.cut_last_line)
        tool.say(0, "warning: " + s.input +
                        ": the last line is cut short (no end of line); it is left out");
    // An empty file or stdin (a forgotten --events-in in a crontab) is not a quiet call.
    if (!o.follow && s.events == 0)
        throw Error(ErrorCode::BadInput,
                    s.input + ": no events in it; is it the output of a kms tool's --events?");
    const Metrics metrics = summary_metrics(s);
    if (!o.prometheus.empty()) write_prometheus(o.prometheus, summary_samples(s));
    Json doc = summary_json(s);
    if (!asserts.empty()) doc["asserts"] = verdicts(asserts, metrics);
    tool.events().emit("summary", doc);
    if (tool.common().json) {
        std::printf("%s\n", doc.dump().c_str());
    } else if (!tool.common().quiet) {
        print_summary(stdout, s);
    }
    std::fflush(stdout);
    return check(tool, asserts, metrics);
}

int run_plot(Tool& tool, const StatsOptions& o) {
    const Summary s = read_summary(o.plot_events);
    const std::string svg = plot_svg(s);
    if (o.plot_output == "-") {
        std::fwrite(svg.data(), 1, svg.size(), stdout);
        if (std::fflush(stdout) != 0) throw Error(ErrorCode::Io, "stdout: cannot write");
        return kOk;
    }
    // Written beside, then renamed: a reader never sees half a picture.
    const std::string tmp = o.plot_output + ".part";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << svg;
        out.close();
        if (!out) {
            ::unlink(tmp.c_str());
            throw Error(ErrorCode::Io, o.plot_output + ": cannot write");
        }
    }
    if (std::rename(tmp.c_str(), o.plot_output.c_str()) != 0) {
        ::unlink(tmp.c_str());
        throw Error(ErrorCode::Io, o.plot_output + ": cannot write");
    }
    tool.say(1, "wrote " + o.plot_output);
    if (tool.common().json)
        std::printf("%s\n", Json{{"output", o.plot_output}, {"events", s.events}}.dump().c_str());
    return kOk;
}

}  // namespace

int main(int argc, char** argv) {
    Tool tool({"kms-stats",
               "kms-stats: measure a media file or source, summarise a call's events, check "
               "thresholds, export to Prometheus, plot",
               kExamples});
    tool.catch_signals();
    CLI::App& app = tool.app();
    StatsOptions o;
    app.add_option("input", o.input,
                   "A file, -, http(s)://, rtsp://, rtp://ADDR:PORT?sdp=FILE or test: source to "
                   "probe (measured, never "
                   "decoded); without one, events are read")
        ->option_text("FILE|URI");
    app.add_option("--events-in", o.events_in,
                   "Read the JSON-lines event stream of a kms tool from FILE (- or none: stdin)")
        ->option_text("FILE");
    app.add_option("--assert", o.asserts,
                   "Exit 8 unless EXPR holds, e.g. 'loss < 1%', 'rtt.p95 < 150ms', "
                   "'video.fps >= 25' (repeatable; grammar in man kms-stats)")
        ->option_text("EXPR")
        ->take_all()
        ->allow_extra_args(false);
    app.add_option("--prometheus", o.prometheus,
                   "Also write the figures to FILE in node_exporter's textfile format (atomically)")
        ->option_text("FILE");
    app.add_flag("--follow", o.follow,
                 "Summarise: read the events as they are written, with a live table of each "
                 "stream on a terminal, until the writer ends, -t, or a signal");
    app.add_option("--serve-metrics", o.serve_metrics,
                   "With --follow: answer GET /metrics on ADDRESS:PORT in the Prometheus text "
                   "format")
        ->option_text("ADDR:PORT");
    app.add_option("--attach", o.attach,
                   "Read the control socket of a running kms-call or kms-record (--control "
                   "PATH): statistics and state, once or every --interval")
        ->option_text("PATH");
    app.add_option("--interval", o.interval, "With --attach: read again every SECONDS")
        ->check(seconds_check(false))
        ->option_text("SECONDS");
    app.add_option("--gap", o.gap,
                   "Probe: report holes in the timestamps longer than SECONDS "
                   "(default 0.5)")
        ->check(seconds_check(false))
        ->option_text("SECONDS");
    CLI::App* plot = app.add_subcommand("plot",
                                        "Draw bitrate, frame rate, loss and RTT of an "
                                        "event stream over time as SVG");
    plot->add_option("events", o.plot_events, "The event stream (- for stdin)")
        ->required()
        ->option_text("EVENTS");
    plot->add_option("-o,--output", o.plot_output, "The SVG file to write, or -")
        ->required()
        ->option_text("FILE");
    plot->fallthrough();
    const int rc = tool.run(argc, argv, [&]() -> int {
        if (*plot) {
            if (!o.input.empty() || !o.events_in.empty() || !o.asserts.empty() ||
                !o.prometheus.empty())
                throw Error(ErrorCode::InvalidArgument,
                            "plot takes its events as its own argument, and no --assert or "
                            "--prometheus");
            return run_plot(tool, o);
        }
        if (!o.attach.empty()) {
            if (!o.input.empty() || !o.events_in.empty() || o.follow)
                throw Error(ErrorCode::InvalidArgument,
                            "--attach reads a running tool; no FILE|URI, --events-in or "
                            "--follow with it");
            if (o.asserts.empty()) return run_attach(tool, o.attach, o.interval);
            // Thresholds on a running tool: the snapshots' statistics summarised as an event
            // stream would be.
            const auto asserts = parse_asserts(o, summary_metric_names());
            Summariser collect(o.attach);
            const int read = run_attach(tool, o.attach, o.interval, &collect);
            return read != kOk ? read : check(tool, asserts, summary_metrics(collect.result()));
        }
        if (o.interval > 0)
            throw Error(ErrorCode::InvalidArgument, "--interval goes with --attach");
        if (tool.common().json && tool.common().events == "-")
            throw Error(ErrorCode::InvalidArgument,
                        "--json and --events -: stdout carries one of them; give --events a FILE");
        if (!o.serve_metrics.empty() && !o.follow)
            throw Error(ErrorCode::InvalidArgument,
                        "--serve-metrics serves what --follow reads; give --follow too");
        if (o.follow && !o.input.empty())
            throw Error(ErrorCode::InvalidArgument, "--follow reads events, not a FILE|URI");
        if (!o.input.empty() && !o.events_in.empty())
            throw Error(ErrorCode::InvalidArgument,
                        "a FILE|URI to probe and --events-in: give one of the two");
        return o.input.empty() ? run_summary(tool, o) : run_probe(tool, o);
    });
    std::fflush(stdout);
    std::fflush(stderr);
    return rc;
}
