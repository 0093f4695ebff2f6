#include "media/frame_pool.hpp"

#include <algorithm>

#include <gst/video/video.h>

namespace kms::media {

void bound_decoded_frames(GstPad* pad, unsigned frames) {
    // After the query is answered (PULL): the answer is what the decoder's decide_allocation
    // reads, and the bound goes into the pool's config from there.
    gst_pad_add_probe(
        pad,
        static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM | GST_PAD_PROBE_TYPE_PULL),
        [](GstPad*, GstPadProbeInfo* info, gpointer data) {
            GstQuery* q = GST_PAD_PROBE_INFO_QUERY(info);
            if (GST_QUERY_TYPE(q) != GST_QUERY_ALLOCATION) return GST_PAD_PROBE_OK;
            const guint bound = GPOINTER_TO_UINT(data);
            if (gst_query_get_n_allocation_pools(q) == 0) {
                GstCaps* caps = nullptr;
                gst_query_parse_allocation(q, &caps, nullptr);
                GstVideoInfo vi;
                if (!caps || !gst_video_info_from_caps(&vi, caps)) return GST_PAD_PROBE_OK;
                gst_query_add_allocation_pool(q, nullptr, static_cast<guint>(vi.size), 0, bound);
                return GST_PAD_PROBE_OK;
            }
            GstBufferPool* pool = nullptr;
            guint size = 0, min = 0, max = 0;
            gst_query_parse_nth_allocation_pool(q, 0, &pool, &size, &min, &max);
            // Never below what downstream said it needs to work at all.
            const guint want = std::max(min, bound);
            if (max == 0 || max > want)
                gst_query_set_nth_allocation_pool(q, 0, pool, size, min, want);
            if (pool) gst_object_unref(pool);
            return GST_PAD_PROBE_OK;
        },
        GUINT_TO_POINTER(frames), nullptr);
}

}  // namespace kms::media
