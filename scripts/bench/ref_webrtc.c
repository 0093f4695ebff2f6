/* Reference for scripts/bench/call_setup: two webrtcbins in one process, each sending the other
 * VP8 640x480 (and, with --audio, Opus), negotiated in-process with trickle ICE on loopback.
 * Prints the milliseconds from process start until both have decoded a video frame, then keeps
 * the call up for --duration seconds (for CPU and memory figures) and exits. With --one-way only
 * the first sends and the second receives, and the figure is the receiver's first frame: the
 * leaner reference for one side of a call.
 *
 * Plain webrtcbin with its defaults, as an application would write it (after GStreamer's
 * webrtc-sendrecv example): no kms code. */
#define GST_USE_UNSTABLE_API
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static GMainLoop *loop;
static GstElement *a, *b;
static volatile gint decoded;
static double duration_s = 0;
static gint frames_needed = 2; /* decoded frames, counting both peers, before the figure */

static double uptime_ms (void)
{
  /* Process start from /proc/self/stat (field 22, clock ticks since boot), as libkms does. */
  static double start = -1;
  if (start < 0) {
    char buf[1024];
    FILE *f = fopen ("/proc/self/stat", "r");
    size_t n = f ? fread (buf, 1, sizeof buf - 1, f) : 0;
    if (f)
      fclose (f);
    buf[n] = 0;
    char *p = strrchr (buf, ')');
    int field = 2;
    while (p && *p && field < 22) {
      if (*p == ' ')
        field++;
      p++;
    }
    start = p ? atof (p) / sysconf (_SC_CLK_TCK) : 0;
  }
  struct timespec ts;
  clock_gettime (CLOCK_BOOTTIME, &ts);
  return (ts.tv_sec + ts.tv_nsec / 1e9 - start) * 1000.0;
}

static gboolean quit_cb (gpointer d)
{
  (void) d;
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

static GstPadProbeReturn first_frame (GstPad * pad, GstPadProbeInfo * info, gpointer d)
{
  (void) pad;
  (void) info;
  (void) d;
  if (g_atomic_int_add (&decoded, 1) == frames_needed - 1) {
    printf ("%.1f\n", uptime_ms ());
    fflush (stdout);
    g_timeout_add ((guint) (duration_s * 1000), quit_cb, NULL);
  }
  return GST_PAD_PROBE_REMOVE;
}

static void on_pad_added (GstElement * w, GstPad * pad, gpointer d)
{
  (void) d;
  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;
  GstCaps *caps = gst_pad_get_current_caps (pad);
  if (!caps)
    caps = gst_pad_query_caps (pad, NULL);
  const gchar *enc = gst_structure_get_string (gst_caps_get_structure (caps, 0), "encoding-name");
  gboolean video = enc && g_str_equal (enc, "VP8");
  gst_caps_unref (caps);
  GstElement *bin = gst_parse_bin_from_description (video ?
      "queue ! rtpvp8depay ! vp8dec name=dec ! fakesink sync=false async=false" :
      "queue ! rtpopusdepay ! opusdec ! fakesink sync=false async=false", TRUE, NULL);
  gst_bin_add (GST_BIN (GST_ELEMENT_PARENT (w)), bin);
  gst_element_sync_state_with_parent (bin);
  GstPad *sink = gst_element_get_static_pad (bin, "sink");
  gst_pad_link (pad, sink);
  gst_object_unref (sink);
  if (video) {
    GstElement *dec = gst_bin_get_by_name (GST_BIN (bin), "dec");
    GstPad *src = gst_element_get_static_pad (dec, "src");
    gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, first_frame, NULL, NULL);
    gst_object_unref (src);
    gst_object_unref (dec);
  }
}

static void on_candidate (GstElement * w, guint mline, gchar * cand, gpointer other)
{
  (void) w;
  g_signal_emit_by_name (other, "add-ice-candidate", mline, cand);
}

static void on_answer_created (GstPromise * p, gpointer d)
{
  (void) d;
  GstWebRTCSessionDescription *answer = NULL;
  gst_structure_get (gst_promise_get_reply (p), "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION,
      &answer, NULL);
  gst_promise_unref (p);
  g_signal_emit_by_name (b, "set-local-description", answer, NULL);
  g_signal_emit_by_name (a, "set-remote-description", answer, NULL);
  gst_webrtc_session_description_free (answer);
}

static void on_offer_created (GstPromise * p, gpointer d)
{
  (void) d;
  GstWebRTCSessionDescription *offer = NULL;
  gst_structure_get (gst_promise_get_reply (p), "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION,
      &offer, NULL);
  gst_promise_unref (p);
  g_signal_emit_by_name (a, "set-local-description", offer, NULL);
  g_signal_emit_by_name (b, "set-remote-description", offer, NULL);
  gst_webrtc_session_description_free (offer);
  g_signal_emit_by_name (b, "create-answer", NULL,
      gst_promise_new_with_change_func (on_answer_created, NULL, NULL));
}

static void on_negotiation_needed (GstElement * w, gpointer d)
{
  (void) w;
  (void) d;
  g_signal_emit_by_name (a, "create-offer", NULL,
      gst_promise_new_with_change_func (on_offer_created, NULL, NULL));
}

static void loopback (GstElement * w)
{
  GstWebRTCICE *ice = NULL;
  gboolean ok;
  g_object_get (w, "ice-agent", &ice, NULL);
  g_signal_emit_by_name (ice, "add-local-ip-address", "127.0.0.1", &ok);
  gst_object_unref (ice);
}

int main (int argc, char **argv)
{
  gboolean audio = FALSE;
  for (int i = 1; i < argc; i++) {
    if (!strcmp (argv[i], "--duration") && i + 1 < argc)
      duration_s = atof (argv[++i]);
    else if (!strcmp (argv[i], "--audio"))
      audio = TRUE;
    else if (!strcmp (argv[i], "--one-way"))
      frames_needed = 1;
  }
  uptime_ms ();
  gst_init (&argc, &argv);
  loop = g_main_loop_new (NULL, FALSE);
  const char *video_src = "videotestsrc is-live=true ! video/x-raw,width=640,height=480,framerate=30/1"
      " ! videoconvert ! queue ! vp8enc deadline=1 ! rtpvp8pay ! application/x-rtp,media=video,"
      "encoding-name=VP8,payload=96 ! %s.";
  const char *audio_src = "audiotestsrc is-live=true ! audioconvert ! audioresample ! queue ! opusenc"
      " ! rtpopuspay ! application/x-rtp,media=audio,encoding-name=OPUS,payload=97 ! %s.";
  GString *desc = g_string_new ("webrtcbin name=a bundle-policy=max-bundle "
      "webrtcbin name=b bundle-policy=max-bundle ");
  g_string_append_printf (desc, video_src, "a");
  if (frames_needed == 2) {
    g_string_append (desc, " ");
    g_string_append_printf (desc, video_src, "b");
  }
  if (audio) {
    g_string_append (desc, " ");
    g_string_append_printf (desc, audio_src, "a");
    g_string_append (desc, " ");
    g_string_append_printf (desc, audio_src, "b");
  }
  GError *err = NULL;
  GstElement *pipe = gst_parse_launch (desc->str, &err);
  g_string_free (desc, TRUE);
  if (!pipe) {
    fprintf (stderr, "ref-webrtc: %s\n", err->message);
    return 1;
  }
  a = gst_bin_get_by_name (GST_BIN (pipe), "a");
  b = gst_bin_get_by_name (GST_BIN (pipe), "b");
  loopback (a);
  loopback (b);
  g_signal_connect (a, "on-negotiation-needed", G_CALLBACK (on_negotiation_needed), NULL);
  g_signal_connect (a, "on-ice-candidate", G_CALLBACK (on_candidate), b);
  g_signal_connect (b, "on-ice-candidate", G_CALLBACK (on_candidate), a);
  g_signal_connect (a, "pad-added", G_CALLBACK (on_pad_added), NULL);
  g_signal_connect (b, "pad-added", G_CALLBACK (on_pad_added), NULL);
  gst_element_set_state (pipe, GST_STATE_PLAYING);
  g_timeout_add (30000 + (guint) (duration_s * 1000), quit_cb, NULL);
  g_main_loop_run (loop);
  int rc = g_atomic_int_get (&decoded) >= frames_needed ? 0 : 1;
  gst_element_set_state (pipe, GST_STATE_NULL);
  return rc;
}
