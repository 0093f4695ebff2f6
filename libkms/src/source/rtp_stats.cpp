#include "source/rtp_stats.hpp"

#include <gst/rtp/rtp.h>

#include <functional>

#include "gst/handles.hpp"

namespace kms::source {

namespace {

struct JitterBuffer {
    GstElement* element = nullptr;  // borrowed: the iteration's reference lives meanwhile
    guint32 ssrc = 0;               // 0: the caps do not say
    guint64 lost = 0, avg_jitter_ns = 0;
};

void for_each_jitter_buffer(GstBin* bin, const std::function<void(GstElement*)>& fn) {
    std::vector<gst::ElementPtr> found;
    gst::IteratorPtr it(gst_bin_iterate_recurse(bin));
    GValue item = G_VALUE_INIT;
    for (bool more = true; more;) {
        switch (gst_iterator_next(it.get(), &item)) {
            case GST_ITERATOR_OK: {
                auto* e = GST_ELEMENT(g_value_get_object(&item));
                GstElementFactory* f = gst_element_get_factory(e);
                if (f && g_str_equal(GST_OBJECT_NAME(f), "rtpjitterbuffer"))
                    found.emplace_back(GST_ELEMENT(gst_object_ref(e)));
                g_value_reset(&item);
                break;
            }
            case GST_ITERATOR_RESYNC:  // the bin changed (a stream came): look again
                gst_iterator_resync(it.get());
                found.clear();
                break;
            default:
                more = false;
        }
    }
    g_value_unset(&item);
    for (auto& e : found) fn(e.get());
}

JitterBuffer read(GstElement* e) {
    JitterBuffer jb;
    jb.element = e;
    GstStructure* raw = nullptr;
    g_object_get(e, "stats", &raw, nullptr);
    gst::StructurePtr stats(raw);
    if (stats) {
        gst_structure_get_uint64(stats.get(), "num-lost", &jb.lost);
        gst_structure_get_uint64(stats.get(), "avg-jitter", &jb.avg_jitter_ns);
    }
    gst::PadPtr src(gst_element_get_static_pad(e, "src"));
    gst::CapsPtr caps(src ? gst_pad_get_current_caps(src.get()) : nullptr);
    if (caps && gst_caps_get_size(caps.get()) > 0) {
        const GstStructure* s = gst_caps_get_structure(caps.get(), 0);
        guint ssrc = 0;
        if (gst_structure_get_uint(s, "ssrc", &ssrc)) jb.ssrc = ssrc;
    }
    return jb;
}

}  // namespace

void count_rtp(GstPad* pad, const std::shared_ptr<RtpCounters>& c) {
    gst_pad_add_probe(
        pad, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad*, GstPadProbeInfo* info, gpointer d) -> GstPadProbeReturn {
            auto& n = **static_cast<std::shared_ptr<RtpCounters>*>(d);
            // The fixed header, CSRCs, extension and padding read in place: on every packet a
            // full gst_rtp_buffer_map cost more than the counting (perf, kms-record).
            GstBuffer* b = GST_PAD_PROBE_INFO_BUFFER(info);
            const gsize size = gst_buffer_get_size(b);
            guint8 h[12];
            if (gst_buffer_extract(b, 0, h, sizeof h) != sizeof h || (h[0] >> 6) != 2)
                return GST_PAD_PROBE_OK;
            gsize header = 12 + 4u * (h[0] & 0x0f);
            if (h[0] & 0x10) {  // an extension: 4 bytes, then its length in 32-bit words
                guint8 x[4];
                if (gst_buffer_extract(b, header, x, 4) != 4) return GST_PAD_PROBE_OK;
                header += 4 + 4u * ((x[2] << 8) | x[3]);
            }
            guint8 padding = 0;
            if ((h[0] & 0x20) && gst_buffer_extract(b, size - 1, &padding, 1) != 1)
                return GST_PAD_PROBE_OK;
            if (header + padding > size) return GST_PAD_PROBE_OK;
            n.ssrc.store(
                (guint32{h[8]} << 24) | (guint32{h[9]} << 16) | (guint32{h[10]} << 8) | h[11],
                std::memory_order_relaxed);
            n.bytes.fetch_add(size - header - padding, std::memory_order_relaxed);
            n.packets.fetch_add(1, std::memory_order_relaxed);
            return GST_PAD_PROBE_OK;
        },
        new std::shared_ptr<RtpCounters>(c),
        [](gpointer d) { delete static_cast<std::shared_ptr<RtpCounters>*>(d); });
}

void count_frames(GstPad* pad, const std::shared_ptr<RtpCounters>& c) {
    gst_pad_add_probe(
        pad, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad*, GstPadProbeInfo*, gpointer d) -> GstPadProbeReturn {
            (*static_cast<std::shared_ptr<RtpCounters>*>(d))
                ->frames.fetch_add(1, std::memory_order_relaxed);
            return GST_PAD_PROBE_OK;
        },
        new std::shared_ptr<RtpCounters>(c),
        [](gpointer d) { delete static_cast<std::shared_ptr<RtpCounters>*>(d); });
}

std::vector<RtpStreamStats> collect(GstBin* bin,
                                    const std::vector<std::shared_ptr<RtpCounters>>& streams) {
    std::vector<gst::ElementPtr> keep;  // the jitter buffers, alive while they are read
    std::vector<JitterBuffer> jbs;
    bool listed = false;
    // The bin's jitter buffers, listed only for a stream that has not found its own yet: once
    // all have, a reading walks no bin (it runs every second of a recording).
    auto list = [&] {
        if (listed) return;
        listed = true;
        for_each_jitter_buffer(bin, [&](GstElement* e) {
            keep.emplace_back(GST_ELEMENT(gst_object_ref(e)));
            jbs.push_back(read(e));
        });
    };
    std::vector<RtpStreamStats> out;
    for (const auto& c : streams) {
        RtpStreamStats s;
        s.kind = c->kind;
        s.ssrc = c->ssrc.load(std::memory_order_relaxed);
        s.packets_received = c->packets.load(std::memory_order_relaxed);
        s.bytes_received = c->bytes.load(std::memory_order_relaxed);
        s.frames_received = c->frames.load(std::memory_order_relaxed);
        // Its own jitter buffer once known; else the one of its SSRC (rtspsrc's caps carry
        // it), which is then kept. A sender that restarts gets a new SSRC and a new buffer.
        gst::ElementPtr known{GST_ELEMENT(g_weak_ref_get(&c->jitter_buffer))};
        JitterBuffer match;
        bool found = false;
        if (known) {
            match = read(known.get());
            // A stopped buffer's caps say no SSRC: it is still this stream's.
            found = !match.ssrc || !s.ssrc || match.ssrc == s.ssrc;
        }
        if (!found) {
            list();
            for (auto& jb : jbs)
                if (!found && jb.ssrc && jb.ssrc == s.ssrc) {
                    match = jb;
                    found = true;
                    g_weak_ref_set(&c->jitter_buffer, jb.element);
                }
        }
        if (found) {
            s.packets_lost = match.lost;
            s.jitter_s = static_cast<double>(match.avg_jitter_ns) / 1e9;
        }
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace kms::source
