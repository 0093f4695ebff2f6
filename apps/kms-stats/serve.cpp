#include "serve.hpp"

#include <libsoup/soup.h>

#include <cstdlib>

#include "kms/error.hpp"
#include "report.hpp"

namespace kms::stats {

namespace {

struct GObjectUnref {
    void operator()(gpointer p) const {
        if (p) g_object_unref(p);
    }
};
struct GErrorFree {
    void operator()(GError* e) const {
        if (e) g_error_free(e);
    }
};
struct GFree {
    void operator()(gpointer p) const { g_free(p); }
};

// The exposition format's content type (Prometheus, "Text-based format").
constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace

struct MetricsServer::Impl {
    std::unique_ptr<SoupServer, GObjectUnref> server;
    std::function<Samples()> samples;
    std::string url;
};

namespace {

void on_metrics(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*, gpointer data) {
    auto* impl = static_cast<MetricsServer::Impl*>(data);
    const char* method = soup_server_message_get_method(msg);
    if (std::string(path) != "/metrics") {
        soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND, nullptr);
        return;
    }
    if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD) {
        soup_server_message_set_status(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, nullptr);
        return;
    }
    const std::string text = prometheus_text(impl->samples());
    soup_server_message_set_response(msg, kContentType, SOUP_MEMORY_COPY, text.data(), text.size());
    soup_server_message_set_status(msg, SOUP_STATUS_OK, nullptr);
}

}  // namespace

MetricsServer::MetricsServer(const std::string& address, std::function<Samples()> samples)
    : impl_(std::make_unique<Impl>()) {
    impl_->samples = std::move(samples);
    // HOST:PORT, the port after the last ':'; an IPv6 host in brackets.
    const auto colon = address.rfind(':');
    std::string host = colon == std::string::npos ? "" : address.substr(0, colon);
    const std::string port_text = colon == std::string::npos ? "" : address.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    char* end = nullptr;
    const long port = std::strtol(port_text.c_str(), &end, 10);
    std::unique_ptr<GInetAddress, GObjectUnref> inet(
        host.empty() ? nullptr : g_inet_address_new_from_string(host.c_str()));
    if (!inet || port_text.empty() || *end || port < 0 || port > 65535)
        throw Error(ErrorCode::InvalidArgument,
                    "--serve-metrics " + address +
                        ": expected ADDRESS:PORT, such as 127.0.0.1:9477 or [::1]:9477");
    std::unique_ptr<GSocketAddress, GObjectUnref> where(
        g_inet_socket_address_new(inet.get(), static_cast<guint16>(port)));
    impl_->server.reset(soup_server_new("server-header", "kms-stats ", nullptr));
    soup_server_add_handler(impl_->server.get(), "/", on_metrics, impl_.get(), nullptr);
    GError* raw = nullptr;
    if (!soup_server_listen(impl_->server.get(), where.get(),
                            static_cast<SoupServerListenOptions>(0), &raw)) {
        std::unique_ptr<GError, GErrorFree> err(raw);
        throw Error(ErrorCode::Network, "--serve-metrics " + address + ": " + err->message);
    }
    // The real port, when 0 asked for any.
    GSList* uris = soup_server_get_uris(impl_->server.get());
    if (uris) {
        std::unique_ptr<gchar, GFree> text(g_uri_to_string(static_cast<GUri*>(uris->data)));
        impl_->url = std::string(text.get());
        if (!impl_->url.empty() && impl_->url.back() == '/') impl_->url.pop_back();
        impl_->url += "/metrics";
    }
    g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
}

MetricsServer::~MetricsServer() {
    if (impl_ && impl_->server) soup_server_disconnect(impl_->server.get());
}

std::string MetricsServer::url() const {
    return impl_->url;
}

}  // namespace kms::stats
