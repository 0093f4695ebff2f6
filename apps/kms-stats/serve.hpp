// --serve-metrics: GET /metrics over HTTP (libsoup) on the main loop, in the Prometheus text
// format, for a scraper to read while a stream is followed.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "metrics.hpp"

namespace kms::stats {

class MetricsServer {
  public:
    /// Listens on HOST:PORT ([v6]:PORT for IPv6; port 0 picks one) and answers GET /metrics
    /// with what samples() gives then. Throws Error(InvalidArgument) for a malformed address,
    /// Error(Network) when it cannot listen there.
    MetricsServer(const std::string& address, std::function<Samples()> samples);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    /// http://HOST:PORT/metrics, with the port it really listens on.
    std::string url() const;

    struct Impl;  ///< private to serve.cpp (public for its C callback)

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace kms::stats
