#include "source/depay.hpp"

#include <cstring>
#include <string>

namespace kms::source {

namespace {

// The highest-ranked factory of type whose pad of direction can take caps, or nullptr.
GstElementFactory* best_factory(GstElementFactoryListType type, const GstCaps* caps,
                                GstPadDirection direction) {
    GList* all = gst_element_factory_list_get_elements(type, GST_RANK_MARGINAL);
    GList* fit = gst_element_factory_list_filter(all, caps, direction, FALSE);
    fit = g_list_sort(fit, gst_plugin_feature_rank_compare_func);
    GstElementFactory* best =
        fit ? GST_ELEMENT_FACTORY(gst_object_ref(GST_OBJECT(fit->data))) : nullptr;
    gst_plugin_feature_list_free(fit);
    gst_plugin_feature_list_free(all);
    return best;
}

// The caps a factory's always-present src pad gives for media ("video", "audio"; any when
// empty), or nullptr. rtpmp4gdepay, for one, gives video/mpeg or audio/mpeg by the stream.
GstCaps* src_template_caps(GstElementFactory* f, const std::string& media) {
    for (const GList* l = gst_element_factory_get_static_pad_templates(f); l; l = l->next) {
        auto* t = static_cast<GstStaticPadTemplate*>(l->data);
        if (t->direction != GST_PAD_SRC || t->presence != GST_PAD_ALWAYS) continue;
        GstCaps* all = gst_static_pad_template_get_caps(t);
        if (media.empty()) return all;
        GstCaps* mine = gst_caps_new_empty();
        for (guint i = 0; i < gst_caps_get_size(all); ++i) {
            const GstStructure* st = gst_caps_get_structure(all, i);
            if (g_str_has_prefix(gst_structure_get_name(st), (media + "/").c_str()))
                gst_caps_append_structure(mine, gst_structure_copy(st));
        }
        gst_caps_unref(all);
        return mine;
    }
    return nullptr;
}

// A codec's elementary stream, not a container or anything else a demuxer must open.
bool elementary(const GstCaps* caps) {
    if (!caps || gst_caps_is_empty(caps) || gst_caps_is_any(caps)) return false;
    for (guint i = 0; i < gst_caps_get_size(caps); ++i) {
        const char* name = gst_structure_get_name(gst_caps_get_structure(caps, i));
        const bool media = g_str_has_prefix(name, "video/") || g_str_has_prefix(name, "audio/");
        gboolean system = FALSE;  // an MPEG program stream: mpegpsdemux's
        gst_structure_get_boolean(gst_caps_get_structure(caps, i), "systemstream", &system);
        if (!media || system || !strcmp(name, "video/mpegts") ||
            !strcmp(name, "video/x-matroska") || !strcmp(name, "video/quicktime") ||
            !strcmp(name, "video/x-flv"))
            return false;
    }
    return true;
}

}  // namespace

std::vector<std::string> depay_chain(const GstCaps* rtp_caps) {
    if (!rtp_caps || gst_caps_is_empty(rtp_caps) || gst_caps_is_any(rtp_caps)) return {};
    GstElementFactory* depay =
        best_factory(GST_ELEMENT_FACTORY_TYPE_DEPAYLOADER, rtp_caps, GST_PAD_SINK);
    if (!depay) return {};
    std::vector<std::string> chain{gst_plugin_feature_get_name(depay)};
    const char* media = gst_structure_get_string(gst_caps_get_structure(rtp_caps, 0), "media");
    GstCaps* out = src_template_caps(depay, media ? media : "");
    gst_object_unref(depay);
    if (!elementary(out)) chain.clear();
    // Raw media is already what it is (rawaudioparse would retime a live stream).
    const bool raw =
        out && gst_caps_get_size(out) > 0 &&
        g_str_has_suffix(gst_structure_get_name(gst_caps_get_structure(out, 0)), "/x-raw");
    if (!chain.empty() && !raw)
        if (GstElementFactory* parser =
                best_factory(GST_ELEMENT_FACTORY_TYPE_PARSER, out, GST_PAD_SINK)) {
            chain.emplace_back(gst_plugin_feature_get_name(parser));
            gst_object_unref(parser);
        }
    if (out) gst_caps_unref(out);
    return chain;
}

}  // namespace kms::source
