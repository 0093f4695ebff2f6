#include "webrtc/bundle.hpp"

#include <gst/rtp/rtp.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>

namespace kms::webrtc {

namespace {

// "ID[/direction] URI [attributes]" → id and URI; false when it does not read so.
bool parse_extmap(const char* value, int& id, std::string& uri) {
    if (!value) return false;
    char* end = nullptr;
    const long n = std::strtol(value, &end, 10);
    if (end == value || n < 1 || n > 255) return false;
    while (*end && *end != ' ') ++end;  // skip "/sendrecv"
    while (*end == ' ') ++end;
    const char* stop = end;
    while (*stop && *stop != ' ') ++stop;
    if (stop == end) return false;
    id = static_cast<int>(n);
    uri.assign(end, static_cast<size_t>(stop - end));
    return true;
}

}  // namespace

ExtIds extmap_ids(const GstSDPMedia* media) {
    ExtIds ids;
    for (guint i = 0; i < gst_sdp_media_attributes_len(media); ++i) {
        const GstSDPAttribute* a = gst_sdp_media_get_attribute(media, i);
        int id = 0;
        std::string uri;
        if (g_strcmp0(a->key, "extmap") != 0 || !parse_extmap(a->value, id, uri)) continue;
        if (uri == kMidUri && !ids.mid) ids.mid = id;
        if (uri == kTwccUri && !ids.twcc) ids.twcc = id;
    }
    return ids;
}

ExtIds bundle_extmap_ids(const GstSDPMessage* sdp) {
    ExtIds ids;
    for (guint i = 0; i < gst_sdp_message_medias_len(sdp); ++i) {
        const ExtIds m = extmap_ids(gst_sdp_message_get_media(sdp, i));
        if (!ids.mid) ids.mid = m.mid;
        if (!ids.twcc) ids.twcc = m.twcc;
    }
    return ids;
}

void add_to_caps(GstCaps* caps, ExtIds ids, guint32 ssrc) {
    for (guint i = 0; i < gst_caps_get_size(caps); ++i) {
        GstStructure* s = gst_caps_get_structure(caps, i);
        if (ids.mid)
            gst_structure_set(s, ("extmap-" + std::to_string(ids.mid)).c_str(), G_TYPE_STRING,
                              kMidUri, nullptr);
        if (ids.twcc)
            gst_structure_set(s, ("extmap-" + std::to_string(ids.twcc)).c_str(), G_TYPE_STRING,
                              kTwccUri, nullptr);
        if (ssrc) gst_structure_set(s, "ssrc", G_TYPE_UINT, ssrc, nullptr);
    }
}

void keep_extmaps(GstSDPMedia* media, ExtIds ids) {
    std::set<int> kept;
    for (guint i = gst_sdp_media_attributes_len(media); i-- > 0;) {
        const GstSDPAttribute* a = gst_sdp_media_get_attribute(media, i);
        if (g_strcmp0(a->key, "extmap") != 0) continue;
        int id = 0;
        std::string uri;
        const bool ours = parse_extmap(a->value, id, uri) && ((id == ids.mid && uri == kMidUri) ||
                                                              (id == ids.twcc && uri == kTwccUri));
        if (!ours || !kept.insert(id).second) gst_sdp_media_remove_attribute(media, i);
    }
    if (ids.mid && !kept.count(ids.mid))
        gst_sdp_media_add_attribute(media, "extmap",
                                    (std::to_string(ids.mid) + " " + kMidUri).c_str());
    if (ids.twcc && !kept.count(ids.twcc))
        gst_sdp_media_add_attribute(media, "extmap",
                                    (std::to_string(ids.twcc) + " " + kTwccUri).c_str());
}

void drop_repeated(GstSDPMedia* media, const char* key) {
    std::set<std::string> seen;
    for (guint i = 0; i < gst_sdp_media_attributes_len(media);) {
        const GstSDPAttribute* a = gst_sdp_media_get_attribute(media, i);
        if (g_strcmp0(a->key, key) == 0 && !seen.insert(a->value ? a->value : "").second) {
            gst_sdp_media_remove_attribute(media, i);
            continue;
        }
        ++i;
    }
}

void add_msid(GstSDPMedia* media, const std::string& stream, const std::string& track) {
    if (gst_sdp_media_get_attribute_val(media, "msid")) return;
    gst_sdp_media_add_attribute(media, "msid", (stream + " " + track).c_str());
}

namespace {

// Calls f(m-line index, value) for every attribute line named key that has a value.
template <typename F>
void each_attribute(const GstSDPMessage* sdp, const char* key, F&& f) {
    for (guint i = 0; i < gst_sdp_message_medias_len(sdp); ++i) {
        const GstSDPMedia* m = gst_sdp_message_get_media(sdp, i);
        for (guint j = 0; j < gst_sdp_media_attributes_len(m); ++j) {
            const GstSDPAttribute* a = gst_sdp_media_get_attribute(m, j);
            if (g_strcmp0(a->key, key) == 0 && a->value) f(static_cast<int>(i), a->value);
        }
    }
}

bool is_ssrc(unsigned long long v) {
    return v != 0 && v <= 0xffffffffULL;
}

}  // namespace

std::map<guint32, int> announced_ssrcs(const GstSDPMessage* sdp) {
    std::map<guint32, int> out;
    each_attribute(sdp, "ssrc", [&](int mline, const char* value) {
        char* end = nullptr;
        const unsigned long long ssrc = std::strtoull(value, &end, 10);
        if (end != value && is_ssrc(ssrc)) out.emplace(static_cast<guint32>(ssrc), mline);
    });
    return out;
}

std::map<guint32, guint32> repair_ssrcs(const GstSDPMessage* sdp) {
    const std::map<guint32, int> announced = announced_ssrcs(sdp);
    // A whole decimal token of at most 32 bits, not 0; nothing else ("+22", "23x", "-1").
    auto ssrc_of = [](const std::string& token) -> guint32 {
        guint32 v = 0;
        const char* end = token.data() + token.size();
        auto [ptr, ec] = std::from_chars(token.data(), end, v);
        return ec == std::errc() && ptr == end ? v : 0;
    };
    std::map<guint32, guint32> out;
    std::set<guint32> media_ssrcs;
    each_attribute(sdp, "ssrc-group", [&](int mline, const char* value) {
        std::istringstream in(value);
        std::string semantics, first, second;
        if (!(in >> semantics >> first >> second) || semantics != "FID") return;
        const guint32 media = ssrc_of(first), rtx = ssrc_of(second);
        // Both announced on this m-line: a group cannot pair streams of two m-lines (kinds).
        auto on_this_line = [&](guint32 s) {
            auto it = announced.find(s);
            return s && it != announced.end() && it->second == mline;
        };
        if (media == rtx || !on_this_line(media) || !on_this_line(rtx)) return;
        out.emplace(rtx, media);
        media_ssrcs.insert(media);
    });
    // An SSRC is a stream or the repair of one, never both (FID A B with FID B A or B C).
    std::set<guint32> repairs;
    for (const auto& [rtx, media] : out) repairs.insert(rtx);
    for (auto it = out.begin(); it != out.end();)
        it = media_ssrcs.count(it->first) || repairs.count(it->second) ? out.erase(it)
                                                                       : std::next(it);
    return out;
}

std::string read_mid(GstBuffer* rtp, int id) {
    if (id < 1 || id > 255) return {};
    GstRTPBuffer buf = GST_RTP_BUFFER_INIT;
    if (!gst_rtp_buffer_map(rtp, GST_MAP_READ, &buf)) return {};
    gpointer data = nullptr;
    guint size = 0;
    std::string mid;
    if ((id <= 14 && gst_rtp_buffer_get_extension_onebyte_header(&buf, static_cast<guint8>(id), 0,
                                                                 &data, &size)) ||
        gst_rtp_buffer_get_extension_twobytes_header(&buf, nullptr, static_cast<guint8>(id), 0,
                                                     &data, &size)) {
        // RFC 8843 §15.2: the MID is an RFC 8866 token; never more than 16 bytes in one-byte form.
        mid.assign(static_cast<const char*>(data), size);
        while (!mid.empty() && mid.back() == '\0') mid.pop_back();
    }
    gst_rtp_buffer_unmap(&buf);
    return mid;
}

guint32 read_ssrc(GstBuffer* rtp) {
    guint8 h[12];
    if (gst_buffer_extract(rtp, 0, h, sizeof h) != sizeof h) return 0;
    return (guint32(h[8]) << 24) | (guint32(h[9]) << 16) | (guint32(h[10]) << 8) | h[11];
}

bool add_extensions(GstElement* payloader, ExtIds ids, const std::string& mid) {
    auto add = [&](const char* uri, int id, const char* mid_value) {
        if (!id) return true;
        GstRTPHeaderExtension* ext = gst_rtp_header_extension_create_from_uri(uri);
        if (!ext) return false;
        gst_rtp_header_extension_set_id(ext, static_cast<guint>(id));
        if (mid_value) g_object_set(ext, "mid", mid_value, nullptr);
        g_signal_emit_by_name(payloader, "add-extension", ext);
        gst_object_unref(ext);
        return true;
    };
    return add(kMidUri, mid.empty() ? 0 : ids.mid, mid.c_str()) && add(kTwccUri, ids.twcc, nullptr);
}

void hide_mid_from_caps_queries(GstPad* payloader_src) {
    gst_pad_add_probe(
        payloader_src,
        static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM | GST_PAD_PROBE_TYPE_PULL),
        [](GstPad*, GstPadProbeInfo* info, gpointer) -> GstPadProbeReturn {
            GstQuery* q = GST_PAD_PROBE_INFO_QUERY(info);
            if (GST_QUERY_TYPE(q) != GST_QUERY_CAPS || !gst_query_is_writable(q))
                return GST_PAD_PROBE_OK;
            GstCaps* caps = nullptr;
            gst_query_parse_caps_result(q, &caps);
            if (!caps) return GST_PAD_PROBE_OK;
            bool has = false;
            for (guint i = 0; i < gst_caps_get_size(caps); ++i)
                has = has || gst_structure_has_field(gst_caps_get_structure(caps, i), "a-mid");
            if (!has) return GST_PAD_PROBE_OK;
            GstCaps* copy = gst_caps_copy(caps);
            for (guint i = 0; i < gst_caps_get_size(copy); ++i)
                gst_structure_remove_field(gst_caps_get_structure(copy, i), "a-mid");
            gst_query_set_caps_result(q, copy);
            gst_caps_unref(copy);
            return GST_PAD_PROBE_OK;
        },
        nullptr, nullptr);
}

}  // namespace kms::webrtc
