/* A loopback RTSP camera for the tests, on gst-rtsp-server: serves one gst-launch description
 * at rtsp://127.0.0.1:PORT/cam, optionally behind basic authentication.
 *
 *   rtsp-test-camera PORT 'videotestsrc is-live=1 ! vp8enc ! rtpvp8pay name=pay0 pt=96'
 *       [USER PASSWORD]
 *
 * Prints "ready" on stdout once it listens, and runs until killed. */
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>
#include <stdio.h>

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
    if (argc == 5) {
        GstRTSPAuth* auth = gst_rtsp_auth_new();
        GstRTSPToken* token = gst_rtsp_token_new(GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE, G_TYPE_STRING,
                                                 "user", NULL);
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
