#include "client.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "common/exit_codes.hpp"
#include "kms/version.hpp"

namespace kms::stuntool {

std::atomic<bool> g_stop{false};

namespace {
std::atomic<int> g_signals{0};

void on_signal(int) {
    if (g_signals.fetch_add(1) >= 1) _exit(app::kAborted);
    g_stop = true;
}
}  // namespace

void install_signals() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
}

nlohmann::ordered_json rtt_summary(const std::vector<double>& rtts) {
    double sum = 0, mn = rtts[0], mx = rtts[0];
    for (double r : rtts) sum += r, mn = std::min(mn, r), mx = std::max(mx, r);
    const double mean = sum / static_cast<double>(rtts.size());
    double var = 0;
    for (double r : rtts) var += (r - mean) * (r - mean);
    return {{"min", round3(mn)},
            {"mean", round3(mean)},
            {"max", round3(mx)},
            {"stddev", round3(std::sqrt(var / static_cast<double>(rtts.size())))}};
}

std::string binding_request(const stun::TransactionId& id, uint8_t change, uint16_t response_port) {
    stun::Builder b(stun::Binding, stun::Request, id);
    if (change) b.add(stun::ChangeRequest, std::string("\0\0\0", 3) + char(change));
    if (response_port)
        b.add(stun::ResponsePort,
              std::string{char(response_port >> 8), char(response_port & 0xff), 0, 0});
    b.add(stun::Software, software()).fingerprint();
    return b.bytes();
}

std::string display_text(std::string s) {
    while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.pop_back();
    return s;
}

const std::string& software() {
    // Padded with spaces to a multiple of four bytes: RFC 3489 servers (stund, Debian's
    // stun-server) and clients refuse a SERVER/SOFTWARE of any other length.
    static const std::string s = [] {
        std::string v = std::string("kms-stun ") + kms::version();
        v.append((4 - v.size() % 4) % 4, ' ');
        return v;
    }();
    return s;
}

std::optional<Response> transact(Connection& c, const std::string& request,
                                 const stun::TransactionId& id, const Timing& timing,
                                 const stun::Address* to,
                                 const std::function<void(const Packet&)>& on_other,
                                 std::string* why, unsigned* sent_count) {
    const unsigned sends = c.reliable() ? 1 : timing.retries;
    double wait = timing.rto_ms;
    for (unsigned attempt = 0; attempt < sends && !g_stop; ++attempt) {
        const auto sent = Clock::now();
        if (!c.send(request, to)) {
            if (why) *why = c.error();
            return std::nullopt;
        }
        if (sent_count) ++*sent_count;
        const double this_wait = c.reliable()           ? 79.0 * timing.rto_ms
                                 : attempt + 1 == sends ? 16.0 * timing.rto_ms
                                                        : wait;
        while (!g_stop) {
            const double left = this_wait - ms_since(sent);
            if (left <= 0) break;
            auto p = c.receive(static_cast<int>(std::ceil(left)));
            if (!p) {
                if (c.closed()) {
                    if (why) *why = c.error();
                    return std::nullopt;
                }
                continue;
            }
            auto bytes = std::make_shared<const std::string>(std::move(p->bytes));
            auto parsed = stun::parse(*bytes);
            if (!parsed.message || parsed.message->transaction != id ||
                parsed.message->cls == stun::Request || parsed.message->cls == stun::Indication) {
                if (on_other) on_other(Packet{*bytes, p->from});
                continue;
            }
            if (parsed.message->find(stun::Fingerprint) && !parsed.message->fingerprint_ok())
                continue;
            Response r;
            r.bytes = bytes;
            r.msg = std::move(*parsed.message);
            r.rtt_ms = ms_since(sent);
            r.from = p->from;
            return r;
        }
        wait *= 2;
    }
    if (why) *why = g_stop ? "interrupted" : "no response";
    return std::nullopt;
}

}  // namespace kms::stuntool
