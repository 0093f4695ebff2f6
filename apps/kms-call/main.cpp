// kms-call: one-off WebRTC calls from a shell.
#include <fcntl.h>
#include <unistd.h>
#include <algorithm>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "common/control.hpp"
#include "common/output.hpp"
#include "common/tool.hpp"
#include "kms-call/media.hpp"
#include "kms-call/sdp_io.hpp"
#include "kms/runtime.hpp"
#include "kms/sdp.hpp"
#include "kms/webrtc_endpoint.hpp"

namespace {

using namespace kms;
using namespace kms::app;

// Lines of stdin kept for a data channel that has not opened yet: a paste's worth; a stream
// piped in faster than a call sets up is cut there, and said so.
constexpr size_t kQueuedLines = 1000;

constexpr const char* kExamples =
    "  # a call between two shells joined by two fifos\n"
    "  mkfifo o a\n"
    "  kms-call offer --sdp-out o --sdp-in a -o call.webm &\n"
    "  kms-call answer --sdp-in o --sdp-out a --send test:av?pattern=ball\n"
    "  # the same through one fifo and a pipe, for 10 seconds\n"
    "  mkfifo back; kms-call offer -t 10 < back | kms-call answer -t 10 > back\n"
    "  # a browser peer: paste its offer as JSON, copy the answer back\n"
    "  kms-call answer --sdp-format json --no-audio --video-codec h264\n"
    "  # a text chat beside the call\n"
    "  kms-call offer --sdp-out o --sdp-in a --data chat --no-audio --no-video\n";

struct CallOptions {
    std::string control;
    std::string sdp_in = "-";
    std::string sdp_out = "-";
    std::string sdp_format = "sdp";
    double sdp_timeout = 300;
    std::vector<std::string> send{"test:av"};
    std::string output = "null:";
    std::string min_free = "8M";
    bool no_audio = false, no_video = false, sendonly = false, recvonly = false;
    std::string video_codec = "vp8,vp9,h264";
    std::string audio_codec = "opus,pcmu,pcma,g722";
    std::vector<std::string> bind;
    std::string stun;
    std::vector<std::string> turn;
    std::string turn_user, turn_password;
    std::string ice_policy = "all";
    std::string port_range;
    unsigned max_bitrate = 0, min_bitrate = 0, start_bitrate = 0;
    std::string data;
    double stats_interval = 1.0;
    double ice_timeout = 10.0;
    double media_timeout = 0.0;
    std::string dtls_key = "ecdsa";
};

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t comma = s.find(',', start);
        std::string item =
            s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!item.empty()) out.push_back(item);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

void add_options(CLI::App& app, CallOptions& o) {
    add_control_option(app, o.control);
    app.add_option("--sdp-in", o.sdp_in, "Read the peer's SDP from FILE or fifo (default: stdin)")
        ->option_text("FILE");
    app.add_option("--sdp-out", o.sdp_out, "Write our SDP to FILE or fifo (default: stdout)")
        ->option_text("FILE");
    app.add_option("--sdp-format", o.sdp_format,
                   "sdp, json ({\"type\",\"sdp\"} as browsers) or base64 (of that JSON)")
        ->check(CLI::IsMember({"sdp", "json", "base64"}));
    app.add_option("--sdp-timeout", o.sdp_timeout,
                   "Give up when the peer's SDP has not come after SECONDS (exit 4)")
        ->check(seconds_check(false))
        ->option_text("SECONDS");
    app.add_option(
           "--send", o.send,
           "Media to send: test:av, test:video, a file, v4l2:/dev/video0, pulse:, alsa:DEV; "
           "repeat it for more tracks (each source its own m-lines)")
        ->option_text("URI");
    app.add_option("-o,--output", o.output,
                   "Where received media goes: FILE.webm|.mkv|.mp4, - (Matroska), null:, display:")
        ->option_text("URI");
    app.add_option("--min-free", o.min_free,
                   "-o FILE: end the call, finishing the file, when the disk has less than "
                   "SIZE free; 0: write until the disk is full (default 8M)")
        ->option_text("SIZE");
    app.add_flag("--no-audio", o.no_audio, "Neither send nor receive audio");
    app.add_flag("--no-video", o.no_video, "Neither send nor receive video");
    auto* so = app.add_flag("--sendonly", o.sendonly, "Only send media");
    app.add_flag("--recvonly", o.recvonly, "Only receive media")->excludes(so);
    app.add_option("--video-codec", o.video_codec, "Preference list from vp8, vp9, h264")
        ->option_text("LIST");
    app.add_option("--audio-codec", o.audio_codec, "Preference list from opus, pcmu, pcma, g722")
        ->option_text("LIST");
    app.add_option("--bind", o.bind, "Gather host candidates on IFACE or ADDR only (repeatable)")
        ->option_text("IFACE|ADDR");
    app.add_option("--stun", o.stun, "STUN server, stun:HOST[:PORT]")->option_text("URI");
    app.add_option("--turn", o.turn,
                   "TURN server, turn:[USER:PASS@]HOST[:PORT][?transport=udp|tcp] (repeatable)")
        ->option_text("URI");
    app.add_option("--turn-user", o.turn_user, "TURN user name when the URI has none")
        ->option_text("USER");
    app.add_option("--turn-password", o.turn_password, "TURN password when the URI has none")
        ->option_text("PASS");
    app.add_option("--ice-transport-policy", o.ice_policy, "all, or relay to use TURN only")
        ->check(CLI::IsMember({"all", "relay"}));
    app.add_option("--port-range", o.port_range, "Local UDP ports for ICE, e.g. 40000-40100")
        ->option_text("LO-HI");
    // 0 stands for "none" (and, to start, for 1000), which the help says in words.
    app.add_option("--max-bitrate", o.max_bitrate,
                   "Video never above KBPS (also sent as b=AS/b=TIAS)")
        ->option_text("KBPS")
        ->default_str("none");
    app.add_option("--min-bitrate", o.min_bitrate, "Video never below KBPS while adapting")
        ->option_text("KBPS")
        ->default_str("none");
    app.add_option("--start-bitrate", o.start_bitrate,
                   "Video starts at KBPS (capped by the maximum)")
        ->option_text("KBPS")
        ->default_str("1000");
    app.add_option("--data", o.data,
                   "Open an ordered data channel: stdin lines are sent, messages printed on stdout")
        ->option_text("LABEL");
    app.add_option("--stats-interval", o.stats_interval, "W3C stats events every SECONDS (0: none)")
        ->check(seconds_check(true))
        ->option_text("SECONDS");
    app.add_option("--ice-timeout", o.ice_timeout,
                   "The peer is gone after SECONDS unheard; also bounds ICE gathering (exit 4)")
        ->check(seconds_check(false))
        ->option_text("SECONDS");
    app.add_option("--media-timeout", o.media_timeout,
                   "Exit 6 when no media arrives within SECONDS, or stops for SECONDS (0: off)")
        ->check(seconds_check(true))
        ->option_text("SECONDS");
    app.add_option("--dtls-key", o.dtls_key,
                   "Key of the call's DTLS certificate: ecdsa (P-256, as browsers) or rsa (2048)")
        ->check(CLI::IsMember({"ecdsa", "rsa"}))
        ->capture_default_str();
}

WebRtcOptions to_webrtc(const CallOptions& o, Role role) {
    WebRtcOptions w;
    w.role = role;
    w.direction = o.sendonly   ? MediaDirection::SendOnly
                  : o.recvonly ? MediaDirection::RecvOnly
                               : MediaDirection::SendRecv;
    w.audio = !o.no_audio;
    w.video = !o.no_video;
    w.video_codecs = split_list(o.video_codec);
    w.audio_codecs = split_list(o.audio_codec);
    w.ice.bind = o.bind;
    w.ice.stun = o.stun;
    w.ice.turn = o.turn;
    w.ice.turn_user = o.turn_user;
    w.ice.turn_password = o.turn_password;
    w.ice.relay_only = o.ice_policy == "relay";
    if (w.ice.relay_only && o.turn.empty())
        throw Error(ErrorCode::InvalidArgument,
                    "--ice-transport-policy relay needs a --turn server");
    if (!o.port_range.empty()) parse_port_range(o.port_range, w.ice.port_min, w.ice.port_max);
    w.max_bitrate_kbps = o.max_bitrate;
    w.min_bitrate_kbps = o.min_bitrate;
    w.start_bitrate_kbps = o.start_bitrate;
    w.data_label = o.data;
    w.stats_interval_s = o.stats_interval;
    w.ice_timeout_s = o.ice_timeout;
    w.media_timeout_s = o.media_timeout;
    w.dtls_key = o.dtls_key == "rsa" ? DtlsKey::Rsa : DtlsKey::Ecdsa;
    return w;
}

// stdin and stdout carry one thing each.
void check_stdio(const CallOptions& o, const CallMedia& m) {
    if (m.output.kind == MediaUri::Kind::Stdio && (o.sdp_out == "-" || !o.data.empty()))
        throw Error(ErrorCode::InvalidArgument,
                    "-o - puts media on stdout; give --sdp-out FILE and no --data");
    const bool send_stdin = std::any_of(m.send.begin(), m.send.end(), [](const MediaUri& s) {
        return s.kind == MediaUri::Kind::Stdio;
    });
    if (send_stdin && o.sdp_in == "-")
        throw Error(ErrorCode::InvalidArgument,
                    "--send - reads media from stdin; give --sdp-in FILE");
    if (send_stdin && !o.data.empty())
        throw Error(ErrorCode::InvalidArgument,
                    "--send - and --data both read stdin; give one of them");
}

// Opens and closes a fifo without blocking, so a peer waiting to read it sees end of input.
// A fifo with no reader yet refuses (ENXIO); the peer may be about to open it, so it tries
// `tries` times 50 ms apart (half a second by default; less when a stop is already counting).
void close_for_peer(const std::string& path, int tries = 10) {
    for (int i = 0; i < tries; ++i) {
        int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            ::close(fd);
            return;
        }
        if (errno != ENXIO) return;
        ::usleep(50'000);
    }
}

int call(Tool& tool, const CallOptions& o, Role role) {
    const SdpFormat format = parse_sdp_format(o.sdp_format);
    // stdout carries one kind of data at a time (cli-contract.md, "Streams").
    if (tool.common().events == "-") {
        const char* other = o.sdp_out == "-"     ? "our SDP (give --sdp-out FILE)"
                            : o.output == "-"    ? "media (-o -)"
                            : !o.data.empty()    ? "data channel messages (--data)"
                            : tool.common().json ? "the --json result"
                                                 : nullptr;
        if (other)
            throw Error(ErrorCode::InvalidArgument,
                        std::string("--events - would share stdout with ") + other);
    }
    WebRtcOptions wopt = to_webrtc(o, role);
    CallMedia media = parse_call_media(o.send, o.output, wopt);
    media.min_free = parse_size(o.min_free, "--min-free", true);
    check_stdio(o, media);
    const bool stdout_free = o.output != "-";
    // stdin carries media (--send -): the peer's data channel gets none of it.
    const bool stdin_free =
        o.sdp_in != "-" &&
        std::none_of(media.send.begin(), media.send.end(),
                     [](const MediaUri& s) { return s.kind == MediaUri::Kind::Stdio; });
    Loop loop;
    std::optional<CallEnd> result;
    std::unique_ptr<WebRtcEndpoint> ep;
    std::unique_ptr<Pipeline> pipe;
    bool media_done = false;  // the pipeline ended (what was received is finished) or failed
    std::optional<std::chrono::steady_clock::time_point> stop_began;  // the first stop asked
    std::vector<std::string> queued;  // lines typed before the channel opened
    bool channel_open = false;
    bool got_remote = false;
    bool local_written = false;
    auto end_with = [&](ErrorCode code, const std::string& msg) {
        if (!result) result = CallEnd{false, code, msg};
        // A peer blocked reading our fifo learns at once that no description will come.
        if (!local_written && o.sdp_out != "-") close_for_peer(o.sdp_out);
        tool.events().emit("error", Json{{"code", to_string(code)}, {"message", msg}});
        loop.quit();
    };
    const char* peer_type = role == Role::Offerer ? "answer" : "offer";

    auto on_remote = [&, peer_type](SdpRead r) {
        if (result) return;
        if (!r.ok)
            return end_with(
                r.eof && role == Role::Offerer ? ErrorCode::Negotiation : ErrorCode::BadInput,
                std::string(peer_type) + " from " + (o.sdp_in == "-" ? "stdin" : o.sdp_in) + ": " +
                    r.error +
                    (r.eof && role == Role::Offerer ? " (the peer refused or failed)" : ""));
        if (!r.type.empty() && r.type != peer_type)
            return end_with(ErrorCode::BadInput,
                            std::string("expected an ") + peer_type + ", got an " + r.type);
        if (format == SdpFormat::Sdp && r.sdp.find_first_not_of(" \t\r\n") != std::string::npos &&
            r.sdp[r.sdp.find_first_not_of(" \t\r\n")] == '{')
            return end_with(ErrorCode::BadInput,
                            std::string(peer_type) + " from " +
                                (o.sdp_in == "-" ? "stdin" : o.sdp_in) +
                                ": line 1: this is JSON, not plain SDP: give --sdp-format json");
        got_remote = true;
        tool.say(1, std::string("received the ") + peer_type);
        try {
            ep->set_remote_description(r.sdp);
        } catch (const Error& e) {
            end_with(e.code(), e.what());
        }
    };
    bool dropped = false;
    auto on_line = [&](std::string line) {
        // An offer without a data channel: the lines go nowhere, and the user hears it once.
        if (got_remote && !ep->data_expected()) {
            if (!std::exchange(dropped, true))
                tool.say(0, "the call has no data channel: lines on stdin are dropped");
            return;
        }
        // Lines typed before a channel opens wait for it, a bounded number of them.
        if (!channel_open) {
            if (queued.size() < kQueuedLines)
                queued.push_back(std::move(line));
            else if (!std::exchange(dropped, true))
                tool.say(0, "data channel not open yet: lines beyond " +
                                std::to_string(kQueuedLines) + " are dropped");
            return;
        }
        if (!ep->send_data(line)) tool.say(0, "data channel: could not send a line");
    };
    auto read_remote = [&] {
        // The lines after the description go to a data channel, ours (--data) or the peer's
        // (an answerer's); stdin never carries both a description and media (check_stdio).
        // An offerer without --data gets no channel and leaves the rest of stdin unread (a
        // call in the background of a shell would be stopped, SIGTTIN, for reading it).
        const bool data_on_stdin = o.sdp_in == "-" && (role == Role::Answerer || !o.data.empty());
        if (data_on_stdin)
            read_sdp_async(loop, o.sdp_in, format, on_remote, on_line, [] {});
        else
            read_sdp_async(loop, o.sdp_in, format, on_remote);
        loop.after(static_cast<unsigned>(o.sdp_timeout * 1000), [&, peer_type] {
            if (!got_remote && !result)
                end_with(ErrorCode::Network, std::string("no ") + peer_type + " within " +
                                                 std::to_string(int(o.sdp_timeout)) +
                                                 " s (--sdp-timeout)");
        });
    };

    WebRtcEndpoint::Callbacks cb;
    cb.local_description = [&](const std::string& sdp) {
        SdpEnvelope env{role == Role::Offerer ? "offer" : "answer", sdp};
        // The offerer opens its input at once, beside the write: a peer that fails early can
        // then close our fifo and we see end of input instead of waiting for --sdp-timeout.
        if (role == Role::Offerer) read_remote();
        write_async(loop, o.sdp_out, encode_sdp(env, format), [&](const std::string& error) {
            if (!error.empty()) return end_with(ErrorCode::Io, "cannot write our SDP: " + error);
            local_written = true;
            tool.say(1, role == Role::Offerer ? "offer written; waiting for the answer"
                                              : "answer written");
        });
    };
    // The peer's channel too (an answerer without --data): its label, and stdin goes to it.
    cb.data_open = [&](const std::string& label) {
        channel_open = true;
        tool.say(0, "data channel '" + label + "' open");
        if (stdin_free) read_lines_async(loop, on_line, [] {});
        size_t unsent = 0;
        for (auto& l : queued) unsent += ep->send_data(l) ? 0 : 1;
        if (unsent)
            tool.say(0, "data channel: " + std::to_string(unsent) + " of " +
                            std::to_string(queued.size()) + " waiting lines could not be sent");
        queued.clear();
    };
    cb.data_message = [&](const std::string& msg) {
        if (!stdout_free) return;
        tool.end_progress();  // a terminal shows both: the message must not run into the status
        std::fprintf(stdout, "%s\n", msg.c_str());
        std::fflush(stdout);
    };
    cb.warning = [&](const std::string& message) {
        tool.end_progress();
        tool.say(0, "warning: " + message);
    };
    cb.ready_to_send = [&] { release_call_media(media); };
    // The call is over: then the pipeline stops, which finishes the recording. A muxer gets
    // what is left of 2.5 s from the stop to write its index: a stop ends within 3 s whatever
    // happens.
    cb.ended = [&](const CallEnd& end) {
        if (!result) result = end;
        if (!end.clean) tool.deadline_outcome(exit_code_for(end.code), end.message);
        if (!end.clean && !local_written && o.sdp_out != "-") close_for_peer(o.sdp_out, 2);
        if (media_done) return loop.quit();
        pipe->stop();
        if (media_done) return;
        long wait = 2500;
        if (stop_began)
            wait -= std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - *stop_began)
                        .count();
        loop.after(static_cast<unsigned>(std::max(wait, 100L)), [&] {
            if (media_done) return;
            // A file whose muxer never saw its end may be cut short or lack its index: a call
            // that was otherwise clean says so with status 7, never 0.
            if (result->clean) {
                const std::string why = "-o " + media.output.redacted() +
                                        ": the muxer did not finish the file within 2.5 s of "
                                        "the stop; it may be cut short";
                tool.events().emit("error",
                                   Json{{"code", to_string(ErrorCode::Io)}, {"message", why}});
                result = CallEnd{false, ErrorCode::Io, why};
                // Tearing down a muxer blocked in a write can hang too: the exit says why.
                tool.deadline_outcome(exit_code_for(ErrorCode::Io), why);
            }
            loop.quit();
        });
    };
    Pipeline::Callbacks pcb;
    pcb.ended = [&] {
        media_done = true;
        if (result) return loop.quit();
        ep->abort(Error(ErrorCode::Runtime, "the media stopped before the call ended"));
    };
    // A file that cannot be written (a full disk, the reader of stdout gone) ends the call; an
    // error while the recording is finished after the call turns a clean end into a failure.
    pcb.failed = [&](const Error& e) {
        media_done = !pipe->running();  // a sink's error stops it; another leaves it running
        if (!result) return ep->abort(e);
        if (result->clean) {
            tool.events().emit("error", Json{{"code", to_string(e.code())}, {"message", e.what()}});
            result = CallEnd{false, e.code(), e.what()};
        }
        if (media_done) loop.quit();
    };
    pcb.warning = cb.warning;

    std::function<Json()> control_state;
    std::unique_ptr<ControlServer> control;
    try {
        // The control socket first: a path it cannot take is refused before anything is made.
        control = serve_control(tool, o.control, [&] {
            return control_state ? control_state() : Json{{"state", "starting"}};
        });
        // The endpoint first: the plugins every call needs are checked before those of a source.
        ep = std::make_unique<WebRtcEndpoint>(wopt, cb, tool.events());
        open_call_media(media, wopt);
        pipe = std::make_unique<Pipeline>("kms-call", pcb);
        connect_call_media(*pipe, media, *ep);
        // --min-free: the file's streams have ended where the muxer writes; the call ends
        // with status 7, and the stop finishes the file.
        media.sink->on_disk_low([&](unsigned long long free_bytes) {
            if (result || stop_began) return;  // the call is ending, finishing the file already
            ep->abort(Error(ErrorCode::Io, "-o " + media.output.redacted() +
                                               ": the disk is nearly full (" +
                                               human_bytes(static_cast<long long>(free_bytes)) +
                                               " free, --min-free " +
                                               human_bytes(static_cast<long long>(media.min_free)) +
                                               "): the call ended, and the file is finished"));
        });
        pipe->start();
    } catch (const Error&) {
        // Refused before the call (a missing --send file, an unwritable -o): a peer blocked
        // reading our fifo learns at once that no description will come.
        if (o.sdp_out != "-") close_for_peer(o.sdp_out);
        throw;
    }
    // A stop finishes within 3 s whatever state the media is in: the endpoint bounds its own
    // wind-down (2.5 s for a muxer to write its index), and this is the last resort.
    // A second stop does not wait for the recording either.
    unsigned stops = 0;
    auto stop = [&] {
        tool.stop_deadline(3.0, kFailure, "could not stop cleanly within 3 s; exiting");
        if (!stop_began) stop_began = std::chrono::steady_clock::now();
        ep->stop();
        if (++stops > 1 && result) pipe->stop();
    };
    tool.handle_signals(loop, stop);
    if (tool.common().duration > 0)
        loop.after(static_cast<unsigned>(tool.common().duration * 1000), stop);
    // kms-stats --attach: the newest stats events, and the call's counters.
    control_state = [&] {
        const CallSummary s = ep->summary();
        return Json{{"role", role == Role::Offerer ? "offer" : "answer"},
                    {"state", result                       ? "ending"
                              : channel_open || got_remote ? "in call"
                                                           : "setup"},
                    {"bytesReceived", s.bytes_received},
                    {"videoFramesDecoded", s.video_frames_decoded},
                    {"audioFramesDecoded", s.audio_frames_decoded},
                    {"videoFramesSent", s.video_frames_sent},
                    {"audioFramesSent", s.audio_frames_sent},
                    {"packetsLost", s.packets_lost},
                    {"videoTargetBitrate", s.video_target_kbps * 1000}};
    };
    ep->start();
    if (role == Role::Answerer) read_remote();
    // The live status line (a terminal on stderr only): elapsed, bitrate and frames in, loss,
    // target out.
    auto last = std::make_shared<CallSummary>();
    auto ticks = std::make_shared<unsigned>(0);
    loop.every(1000, [&, last, ticks] {
        const CallSummary now = ep->summary();
        const unsigned t = ++*ticks;
        char line[160];
        std::snprintf(
            line, sizeof line,
            "%02u:%02u  in %llu kbit/s  %llu fps  lost %lld  out %u kbit/s  %llu frames sent",
            t / 60, t % 60, (now.bytes_received - last->bytes_received) * 8 / 1000,
            now.video_frames_decoded - last->video_frames_decoded, now.packets_lost,
            now.video_target_kbps, now.video_frames_sent);
        tool.progress(line);
        *last = now;
        return true;
    });
    loop.run();

    tool.stop_deadline(3.0, kFailure, "could not stop cleanly within 3 s; exiting");
    const CallSummary s = ep->summary();
    pipe.reset();  // the media stops (a call that never started leaves its file as it is)
    ep.reset();
    tool.end_progress();
    // Our description goes to stdout before the result does, or not at all if stdout is stuck.
    wait_writes(result && !result->clean ? 0.2 : 1.0);
    Output out(tool.common().json);
    if (tool.common().json || !tool.common().quiet) {
        if (!tool.common().json) {
            // Text results are for people: stderr, so stdout stays data. No call happened
            // without the peer's description, so there are no frame counts to tell.
            if (got_remote) {
                Output text(false, stderr);
                text.field("videoFramesDecoded", "video frames decoded", s.video_frames_decoded);
                text.field("audioFramesDecoded", "audio frames decoded", s.audio_frames_decoded);
                text.field("videoFramesSent", "video frames sent", s.video_frames_sent);
                if (!o.data.empty() || s.data_messages_sent || s.data_messages_received)
                    text.field("dataMessages", "data messages sent/received",
                               std::to_string(s.data_messages_sent) + "/" +
                                   std::to_string(s.data_messages_received));
            }
        } else {
            out.field("result", "result",
                      result && !result->clean ? to_string(result->code) : "ok");
            if (result && !result->clean) out.field("error", "error", result->message);
            out.field("videoFramesDecoded", "video frames decoded", s.video_frames_decoded);
            out.field("audioFramesDecoded", "audio frames decoded", s.audio_frames_decoded);
            out.field("videoFramesSent", "video frames sent", s.video_frames_sent);
            out.field("audioPacketsSent", "audio packets sent", s.audio_frames_sent);
            out.field("dataMessagesSent", "data messages sent", s.data_messages_sent);
            out.field("dataMessagesReceived", "data messages received", s.data_messages_received);
            out.finish();
            tool.result_printed();
        }
    }
    if (result && !result->clean) {
        std::fprintf(stderr, "%s: %s\n", tool.name(), result->message.c_str());
        return exit_code_for(result->code);
    }
    return kOk;
}

}  // namespace

int main(int argc, char** argv) {
    Tool tool(
        {"kms-call",
         "kms-call: one-off WebRTC calls from a shell (offer/answer over stdio, files or fifos)",
         kExamples});
    tool.catch_signals();
    tool.secret_options({"--turn-password"});
    // A run refused before the call (a folder or file that is not there) still gives --json
    // its one object, as a failed call does.
    tool.json_errors();
    CLI::App& app = tool.app();
    CallOptions o;
    app.require_subcommand(1, 1);
    app.fallthrough();
    // The call options belong to each mode, so that `kms-call offer --help` lists them with their
    // defaults; the common ones (--json, -t, --events ...) stay on the tool and work after the
    // mode.
    CLI::App* offer = app.add_subcommand("offer", "Write an offer, then read the answer");
    CLI::App* answer = app.add_subcommand("answer", "Read an offer, then write the answer");
    for (CLI::App* mode : {offer, answer}) {
        mode->option_defaults()->always_capture_default();
        mode->fallthrough();
        mode->footer(
            "Options common to every kms tool (--json, -t, --events, -v, -q): kms-call "
            "--help.\nSee man kms-call for everything.");
        add_options(*mode, o);
        // An option_text hides CLI11's default; put the default back beside it.
        for (CLI::Option* opt : mode->get_options()) {
            const std::string def = opt->get_default_str(), text = opt->get_option_text();
            if (opt->get_expected_min() > 0 && !def.empty() && def != "[]" && !text.empty() &&
                text.find('=') == std::string::npos)
                opt->option_text(text + " (default " + def + ")");
        }
    }
    if (argc > 1 && argv[1][0] != '-' && std::string_view(argv[1]) != "offer" &&
        std::string_view(argv[1]) != "answer") {
        std::fprintf(stderr,
                     "kms-call: unknown mode '%s'; the modes are offer and answer\n"
                     "Try 'kms-call --help'.\n",
                     argv[1]);
        return kUsage;
    }
    int rc = tool.run(argc, argv, [&] {
        return call(tool, o, offer->parsed() ? Role::Offerer : Role::Answerer);
    });
    std::fflush(stdout);
    std::fflush(stderr);
    // _exit: nothing is left to flush, and exit-time destructors would only cost time.
    kms::remove_registered_files();  // what a sink still alive made and never wrote to
    _exit(rc);
}
