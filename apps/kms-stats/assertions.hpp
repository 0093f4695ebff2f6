// --assert EXPR: a threshold on one measured figure.
//
//   assertion := ws metric ws op ws number [ws unit] ws
//   metric    := name ("." name)*        name := letter (letter | digit | "_" | "-")*
//   op        := "<" | "<=" | ">" | ">=" | "==" | "!="
//   number    := digit+ ["." digit+] | "." digit+
//   unit      := "%" | "s" | "ms" | "us" | "bps" | "kbps" | "Mbps" | "Gbps" | "fps"
//
// The unit must suit the metric (a ratio takes %, a time s/ms/us, a bitrate *bps, a frame
// rate fps); without one the number is in the metric's base unit (ratio, seconds, bit/s).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "metrics.hpp"

namespace kms::stats {

struct Assertion {
    std::string text;      ///< as the user typed it
    std::string metric;    ///< "rtt.p95"
    std::string op;        ///< "<"
    double threshold = 0;  ///< in the metric's base unit
    std::string unit;      ///< as typed, "" when none: the measured value is shown in it
    Dim dim = Dim::Count;
};

/// A malformed expression: what is wrong and the 0-based column it is at.
class AssertSyntax : public std::runtime_error {
  public:
    AssertSyntax(size_t column, const std::string& message)
        : std::runtime_error(message), column_(column) {}
    size_t column() const { return column_; }

  private:
    size_t column_;
};

/// A metric name kms-stats knows, for the mode it runs in.
struct KnownMetric {
    std::string name;
    Dim dim;
};
const std::vector<KnownMetric>& probe_metric_names();
const std::vector<KnownMetric>& summary_metric_names();

/// Parses one expression against the names the mode knows. Throws AssertSyntax.
Assertion parse_assertion(const std::string& text, const std::vector<KnownMetric>& known);

/// The message of a malformed expression: the message, the expression, and a caret under the
/// column, on three lines.
std::string caret_message(const std::string& text, const AssertSyntax& e);

struct Verdict {
    bool ok = false;
    bool measured = false;
    double value = 0;
    std::string line;  ///< "loss < 1%: measured 4.8%" / "...: not measured (no video track)"
};

Verdict evaluate(const Assertion& a, const Metrics& metrics);

}  // namespace kms::stats
