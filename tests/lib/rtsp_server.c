/* A loopback RTSP camera for the tests, on gst-rtsp-server: serves one gst-launch description
 * at rtsp://127.0.0.1:PORT/cam, optionally behind basic authentication.
 *
 *   rtsp-test-camera PORT 'videotestsrc is-live=1 ! vp8enc ! rtpvp8pay name=pay0 pt=96'
 *       [USER PASSWORD]
 *
 * Prints "ready" on stdout once it listens, and runs until killed.
 *
 * A looping file: multifilesrc loop=true starts the file's timestamps again from zero, and a
 * clocksync after it then lets every later pass through at once (a burst of thousands of packets
 * a second). An element named "loop" (e.g. identity name=loop, after the demuxer) gets a probe
 * that carries the timestamps on across each restart, so the camera stays real time. */
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>
#include <stdio.h>

typedef struct {
    GstClockTime offset, next;  // added to every timestamp; where the last buffer ended
    gboolean segment_seen;
} LoopClock;

static GstPadProbeReturn keep_time(GstPad* pad, GstPadProbeInfo* info, gpointer data) {
    (void)pad;
    LoopClock* c = data;
    if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
        // The demuxer opens each pass with a segment starting where the last ended; the first
        // segment (from zero) stays, as the timestamps now run on from it.
        if (GST_EVENT_TYPE(gst_pad_probe_info_get_event(info)) != GST_EVENT_SEGMENT)
            return GST_PAD_PROBE_OK;
        if (!c->segment_seen) {
            c->segment_seen = TRUE;
            return GST_PAD_PROBE_OK;
        }
        return GST_PAD_PROBE_DROP;
    }
    GstBuffer* buf = gst_pad_probe_info_get_buffer(info);
    if (!GST_BUFFER_PTS_IS_VALID(buf)) return GST_PAD_PROBE_OK;
    buf = gst_buffer_make_writable(buf);
    GstClockTime pts = GST_BUFFER_PTS(buf) + c->offset;
    if (GST_CLOCK_TIME_IS_VALID(c->next) && pts + GST_SECOND < c->next) {  // the file restarted
        c->offset += c->next - pts;
        pts = c->next;
    }
    GstClockTime dur =
        GST_BUFFER_DURATION_IS_VALID(buf) ? GST_BUFFER_DURATION(buf) : GST_SECOND / 30;
    if (GST_BUFFER_DTS_IS_VALID(buf)) GST_BUFFER_DTS(buf) += pts - GST_BUFFER_PTS(buf);
    GST_BUFFER_PTS(buf) = pts;
    if (!GST_CLOCK_TIME_IS_VALID(c->next) || pts + dur > c->next) c->next = pts + dur;
    GST_PAD_PROBE_INFO_DATA(info) = buf;
    return GST_PAD_PROBE_OK;
}

static void on_configure(GstRTSPMediaFactory* factory, GstRTSPMedia* media, gpointer data) {
    (void)factory;
    (void)data;
    GstElement* bin = gst_rtsp_media_get_element(media);
    GstElement* loop = gst_bin_get_by_name_recurse_up(GST_BIN(bin), "loop");
    if (loop) {
        LoopClock* c = g_new0(LoopClock, 1);
        c->next = GST_CLOCK_TIME_NONE;
        GstPad* src = gst_element_get_static_pad(loop, "src");
        gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                          keep_time, c, g_free);
        gst_object_unref(src);
        gst_object_unref(loop);
    }
    gst_object_unref(bin);
}

int main(int argc, char** argv) {
    gst_init(&argc, &argv);
    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: %s PORT LAUNCH [USER PASSWORD]\n", argv[0]);
        return 2;
    }
    GMainLoop* loop = g_main_loop_new(NULL, FALSE);
    GstRTSPServer* server = gst_rtsp_server_new();
    gst_rtsp_server_set_address(server, "127.0.0.1");
    gst_rtsp_server_set_service(server, argv[1]);
    GstRTSPMediaFactory* factory = gst_rtsp_media_factory_new();
    gst_rtsp_media_factory_set_launch(factory, argv[2]);
    gst_rtsp_media_factory_set_shared(factory, TRUE);
    g_signal_connect(factory, "media-configure", G_CALLBACK(on_configure), NULL);
    if (argc == 5) {
        GstRTSPAuth* auth = gst_rtsp_auth_new();
        GstRTSPToken* token =
            gst_rtsp_token_new(GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE, G_TYPE_STRING, "user", NULL);
        gchar* basic = gst_rtsp_auth_make_basic(argv[3], argv[4]);
        gst_rtsp_auth_add_basic(auth, basic, token);
        g_free(basic);
        gst_rtsp_token_unref(token);
        gst_rtsp_server_set_auth(server, auth);
        g_object_unref(auth);
        gst_rtsp_media_factory_add_role(factory, "user", GST_RTSP_PERM_MEDIA_FACTORY_ACCESS,
                                        G_TYPE_BOOLEAN, TRUE, GST_RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
                                        G_TYPE_BOOLEAN, TRUE, NULL);
    }
    GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(server);
    gst_rtsp_mount_points_add_factory(mounts, "/cam", factory);
    g_object_unref(mounts);
    if (gst_rtsp_server_attach(server, NULL) == 0) {
        fprintf(stderr, "cannot listen on 127.0.0.1:%s\n", argv[1]);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    g_main_loop_run(loop);
    return 0;
}
