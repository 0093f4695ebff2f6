/* ts-step FILE [audio|video]: three seconds of VP8 video (a key frame every 30 frames) and Opus
 * audio in Matroska, whose audio times step back 300 ms at its 100th frame, or whose video
 * times do at its 45th, and go on from there, as a lip-sync correction or a sender that
 * restarted leaves them. matroskamux writes such times as they come; kms's Sink must not
 * (tests/integration/record_basic.sh). */
#include <gst/gst.h>
#include <stdio.h>

static guint frames;
static guint step_at = 100;

static GstPadProbeReturn step_back(GstPad* pad, GstPadProbeInfo* info, gpointer data) {
    GstBuffer* buf = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
    if (++frames >= step_at && GST_BUFFER_PTS(buf) >= 300 * GST_MSECOND) {
        GST_BUFFER_PTS(buf) -= 300 * GST_MSECOND;
        if (GST_BUFFER_DTS_IS_VALID(buf)) GST_BUFFER_DTS(buf) -= 300 * GST_MSECOND;
    }
    GST_PAD_PROBE_INFO_DATA(info) = buf;
    return GST_PAD_PROBE_OK;
}

int main(int argc, char** argv) {
    gst_init(&argc, &argv);
    const gboolean video = argc == 3 && g_str_equal(argv[2], "video");
    if (argc < 2 || argc > 3 || (argc == 3 && !video && !g_str_equal(argv[2], "audio"))) {
        fprintf(stderr, "usage: ts-step FILE [audio|video]\n");
        return 2;
    }
    if (video) step_at = 45;
    gchar* desc = g_strdup_printf(
        "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 "
        "! vp8enc deadline=1 keyframe-max-dist=30 ! identity name=%s ! matroskamux name=m "
        "! filesink location=%s "
        "audiotestsrc num-buffers=150 samplesperbuffer=960 ! opusenc ! identity name=%s ! m.",
        video ? "step" : "v", argv[1], video ? "a" : "step");
    GError* err = NULL;
    GstElement* pipeline = gst_parse_launch(desc, &err);
    g_free(desc);
    if (!pipeline) {
        fprintf(stderr, "ts-step: %s\n", err->message);
        return 1;
    }
    GstElement* step = gst_bin_get_by_name(GST_BIN(pipeline), "step");
    GstPad* src = gst_element_get_static_pad(step, "src");
    gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, step_back, NULL, NULL);
    gst_object_unref(src);
    gst_object_unref(step);
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    GstBus* bus = gst_element_get_bus(pipeline);
    GstMessage* msg =
        gst_bus_timed_pop_filtered(bus, 30 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    int rc = msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS ? 0 : 1;
    if (rc) fprintf(stderr, "ts-step: the file was not finished\n");
    if (msg) gst_message_unref(msg);
    gst_object_unref(bus);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
    return rc;
}
