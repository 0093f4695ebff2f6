// rtp:// sources: the SDP file says what the packets carry (payload types, codecs, clock rates);
// the URI says where they arrive. GStreamer's own SDP reader (gst_sdp_media_get_caps_from_media,
// as sdpdemux uses) turns each m= section into the caps a depayloader takes.
#include "kms/rtp.hpp"

#include <cstdlib>
#include <fstream>

#include <gio/gio.h>
#include <gst/sdp/sdp.h>

#include "gst/handles.hpp"
#include "kms/error.hpp"
#include "kms/sdp.hpp"

namespace kms {

namespace {

constexpr std::streamsize kMaxSdpFile = 256 * 1024;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(ErrorCode::BadInput, path + ": cannot read the SDP file");
    std::string text;
    text.resize(static_cast<size_t>(kMaxSdpFile) + 1);
    in.read(text.data(), kMaxSdpFile + 1);
    text.resize(static_cast<size_t>(in.gcount()));
    if (text.size() > static_cast<size_t>(kMaxSdpFile))
        throw Error(ErrorCode::BadInput, path + ": larger than 256 kB; is it an SDP file?");
    return text;
}

bool is_rtp_profile(const char* proto) {
    const std::string p = proto ? proto : "";
    return p.rfind("RTP/", 0) == 0;
}

}  // namespace

std::vector<RtpStream> rtp_streams(const MediaUri& uri) {
    for (const auto& [key, value] : uri.params)
        if (key != "sdp")
            throw Error(ErrorCode::InvalidArgument, uri.redacted() + ": unknown parameter '" + key +
                                                        "'; rtp:// takes sdp=FILE");
    const std::string path = uri.param("sdp", "");
    if (path.empty())
        throw Error(
            ErrorCode::InvalidArgument,
            uri.redacted() + ": say what the packets carry with ?sdp=FILE (an SDP description)");
    // The URI parser checked ADDRESS:PORT; an IPv6 address may come in brackets.
    const size_t colon = uri.location.rfind(':');
    std::string address = uri.location.substr(0, colon);
    if (address.size() > 2 && address.front() == '[' && address.back() == ']')
        address = address.substr(1, address.size() - 2);
    if (address.empty())
        throw Error(ErrorCode::InvalidArgument,
                    uri.redacted() + ": say where to listen: rtp://0.0.0.0:PORT for any address");
    const int port = std::stoi(uri.location.substr(colon + 1));
    const std::string text = read_file(path);
    // The strict pass names the line at fault; GstSDPMessage alone accepts almost anything.
    SdpParse parsed = parse_sdp(text, false);
    if (!parsed)
        throw Error(ErrorCode::BadInput,
                    path + (parsed.error.line ? ":" + std::to_string(parsed.error.line) : "") +
                        ": " + parsed.error.message);
    GstSDPMessage* raw = nullptr;
    gst_sdp_message_new_from_text(parsed.sdp->text.c_str(), &raw);
    gst::SdpMessagePtr msg(raw);
    if (!msg) throw Error(ErrorCode::BadInput, path + ": not an SDP description");

    std::vector<RtpStream> streams;
    int first = -1;
    for (guint i = 0; i < gst_sdp_message_medias_len(msg.get()); ++i) {
        const GstSDPMedia* m = gst_sdp_message_get_media(msg.get(), i);
        const std::string kind = gst_sdp_media_get_media(m) ? gst_sdp_media_get_media(m) : "";
        if (!is_rtp_profile(gst_sdp_media_get_proto(m)) || gst_sdp_media_get_port(m) == 0 ||
            (kind != "audio" && kind != "video") || gst_sdp_media_formats_len(m) == 0)
            continue;
        const int own = static_cast<int>(gst_sdp_media_get_port(m));
        if (first < 0) first = own;
        RtpStream s;
        s.kind = kind;
        s.address = address;
        if (GInetAddress* a = g_inet_address_new_from_string(address.c_str())) {
            s.multicast = g_inet_address_get_is_multicast(a);
            g_object_unref(a);
        }
        s.port = port + (own - first);
        if (s.port < 1 || s.port > 65535)
            throw Error(ErrorCode::InvalidArgument,
                        path + ": the " + kind + " stream would move to port " +
                            std::to_string(s.port) + ", outside 1-65535");
        // The first format is the one a sender of a plain RTP stream uses.
        const int pt = std::atoi(gst_sdp_media_get_format(m, 0));
        gst::CapsPtr caps(gst_sdp_media_get_caps_from_media(m, pt));
        if (!caps)
            throw Error(ErrorCode::BadInput, path + ": the " + kind + " stream's payload type " +
                                                 std::to_string(pt) +
                                                 " has no a=rtpmap line naming its codec");
        gst_sdp_media_attributes_to_caps(m, caps.get());
        GstStructure* st = gst_caps_get_structure(caps.get(), 0);
        gst_structure_set_name(st, "application/x-rtp");
        // Session attributes (a=range, a=control...) are not for the depayloader.
        for (const char* field : {"a-range", "a-control", "a-recvonly", "a-sendonly", "a-sendrecv"})
            gst_structure_remove_field(st, field);
        // A codec GStreamer cannot depayload is refused now, not met as silence later.
        GList* all = gst_element_factory_list_get_elements(GST_ELEMENT_FACTORY_TYPE_DEPAYLOADER,
                                                           GST_RANK_MARGINAL);
        GList* fit = gst_element_factory_list_filter(all, caps.get(), GST_PAD_SINK, FALSE);
        const bool known = fit != nullptr;
        gst_plugin_feature_list_free(fit);
        gst_plugin_feature_list_free(all);
        if (!known) {
            const char* codec = gst_structure_get_string(st, "encoding-name");
            throw Error(ErrorCode::BadInput, path + ": no RTP depayloader takes the " + kind +
                                                 " stream's codec " + (codec ? codec : "?") +
                                                 " (payload type " + std::to_string(pt) +
                                                 "); is the a=rtpmap name right?");
        }
        gst::GCharPtr str(gst_caps_to_string(caps.get()));
        s.caps = str.get();
        streams.push_back(std::move(s));
    }
    if (streams.empty())
        throw Error(ErrorCode::BadInput,
                    path + ": no audio or video RTP stream (an m= line with an RTP/ profile)");
    return streams;
}

}  // namespace kms
