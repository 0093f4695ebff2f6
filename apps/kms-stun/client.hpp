// STUN transactions for kms-stun's client modes, and the stop flag its signal handlers set.
#pragma once

#include <atomic>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net.hpp"

namespace kms::stuntool {

/// Set by SIGINT/SIGTERM; a second signal exits 130 at once.
extern std::atomic<bool> g_stop;
void install_signals();

/// RFC 8489 §6.2.1: RTO (500 ms) doubling, Rc (7) sends, the last wait Rm (16) x RTO. Over TCP
/// and TLS the request is sent once and waits Ti = 39.5 s, which scales with RTO (79 x RTO).
struct Timing {
    unsigned rto_ms = 500;
    unsigned retries = 7;
};

/// A response; msg's views point into *bytes.
struct Response {
    std::shared_ptr<const std::string> bytes;
    stun::Message msg;
    double rtt_ms = 0;
    stun::Address from;
};

/// Sends request (transaction id) to the server, or over UDP to *to, and waits for its
/// response. Anything else that arrives meanwhile goes to on_other. nullopt on no response,
/// with the reason in *why. *sent_count grows by the number of times the request went out.
std::optional<Response> transact(Connection& c, const std::string& request,
                                 const stun::TransactionId& id, const Timing& timing,
                                 const stun::Address* to = nullptr,
                                 const std::function<void(const Packet&)>& on_other = {},
                                 std::string* why = nullptr, unsigned* sent_count = nullptr);

/// {"min","mean","max","stddev"} of round-trip times in ms, rounded to microseconds; rtts
/// must not be empty.
nlohmann::ordered_json rtt_summary(const std::vector<double>& rtts);

/// A Binding request with our SOFTWARE and FINGERPRINT, plus CHANGE-REQUEST flags and
/// RESPONSE-PORT (RFC 5780) when they are not zero.
std::string binding_request(const stun::TransactionId& id, uint8_t change = 0,
                            uint16_t response_port = 0);

/// A server's SOFTWARE for display: without the NULs and spaces some servers pad it with.
std::string display_text(std::string s);

/// The SOFTWARE value kms-stun sends: "kms-stun 0.1.0".
const std::string& software();

/// Milliseconds rounded to microseconds, for output.
inline double round3(double v) {
    return std::round(v * 1000) / 1000;
}

}  // namespace kms::stuntool
