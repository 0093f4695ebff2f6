#include "source/depay.hpp"

#include <cstring>

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

// The caps a factory's always-present src pad gives, or nullptr.
GstCaps* src_template_caps(GstElementFactory* f) {
    for (const GList* l = gst_element_factory_get_static_pad_templates(f); l; l = l->next) {
        auto* t = static_cast<GstStaticPadTemplate*>(l->data);
        if (t->direction == GST_PAD_SRC && t->presence == GST_PAD_ALWAYS)
            return gst_static_pad_template_get_caps(t);
    }
    return nullptr;
}

// A codec's elementary stream, not a container or anything else a demuxer must open.
bool elementary(const GstCaps* caps) {
    if (!caps || gst_caps_is_empty(caps) || gst_caps_is_any(caps)) return false;
    for (guint i = 0; i < gst_caps_get_size(caps); ++i) {
        const char* name = gst_structure_get_name(gst_caps_get_structure(caps, i));
        const bool media = g_str_has_prefix(name, "video/") || g_str_has_prefix(name, "audio/");
        if (!media || !strcmp(name, "video/mpegts") || !strcmp(name, "video/x-matroska") ||
            !strcmp(name, "video/quicktime") || !strcmp(name, "video/x-flv"))
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
    GstCaps* out = src_template_caps(depay);
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
