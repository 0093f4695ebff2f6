#!/usr/bin/env bash
# kms-record from RTSP cameras: a loopback camera on gst-rtsp-server (tests/lib/rtsp_server.c)
# sends H.264 and Opus, or VP8 behind a password; kms-record keeps what fits untouched, over UDP
# or TCP, never prints the password, and fails with 4 for a camera that refuses or is not there.
. "$(dirname "$0")/../lib/kms-test.sh"
R=$BUILD/apps/kms-record
SERVER=$BUILD/tests/rtsp-test-camera
codecs() { ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$1" | sort | paste -sd, -; }
duration() { ffprobe -v error -show_entries format=duration -of csv=p=0 "$1"; }
run() { set +e; "$@"; RC=$?; set -e; }
camera() {  # camera PORT LAUNCH [USER PASS]
  "$SERVER" "$@" >"cam$1.out" 2>"cam$1.err" & PIDS+=($!)
  ready "the RTSP camera on $1" 10 grep -q ready "cam$1.out"
}
V="videotestsrc is-live=1 pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1"
camera 8554 "( $V ! x264enc tune=zerolatency key-int-max=15 ! rtph264pay name=pay0 pt=96 \
  audiotestsrc is-live=1 ! opusenc ! rtpopuspay name=pay1 pt=97 )"
camera 8555 "( $V ! vp8enc deadline=1 keyframe-max-dist=15 ! rtpvp8pay name=pay0 pt=96 )" alice 's3cr3t!'

# 1. H.264 and Opus into MP4 over UDP (rtspsrc's default): both untouched, 4 s as asked.
run "$R" -t 4 rtsp://127.0.0.1:8554/cam -o cam.mp4 --events ev1.jsonl 2>err1
expect_rc 0 "rtsp -> mp4"
[[ $(codecs cam.mp4) == "h264,opus" ]] || fail "rtsp -> mp4: codecs $(codecs cam.mp4)"
jq -se '[.[] | select(.type=="track" and .passthrough)] | length == 2' ev1.jsonl >/dev/null ||
  fail "rtsp -> mp4: not both passthrough: $(cat ev1.jsonl)"
d=$(duration cam.mp4)
within "$(echo "($d - 4)^2" | bc -l)" 0.25 || fail "rtsp -> mp4: $d s for -t 4"
pass "RTSP H.264+Opus into MP4, untouched, $d s for -t 4"

# 2. VP8 behind a password, over TCP, into WebM: the password shows nowhere.
run "$R" -v -t 3 --rtsp-transport tcp "rtsp://alice:s3cr3t!@127.0.0.1:8555/cam" -o cam.webm \
  --events ev2.jsonl --json >res2.json 2>err2
expect_rc 0 "rtsp tcp -> webm"
[[ $(codecs cam.webm) == "vp8" ]] || fail "rtsp tcp -> webm: codecs $(codecs cam.webm)"
! grep -q 's3cr3t' err2 ev2.jsonl res2.json || fail "the password was printed"
grep -q 'alice:\*\*\*@' err2 || fail "rtsp tcp -> webm: the URI is not shown redacted: $(cat err2)"
pass "RTSP VP8 over TCP with credentials into WebM; the password is never printed"

# 3. A wrong password, and a camera that is not there: 4, the URI redacted, no file.
run "$R" -t 3 "rtsp://alice:wrong@127.0.0.1:8555/cam" -o denied.webm 2>err3
expect_rc 4 "wrong password"
grep -q "Unauthorized" err3 || fail "wrong password: $(cat err3)"
! grep -q "wrong" err3 || fail "wrong password: the password was printed"
[[ ! -e denied.webm ]] || fail "wrong password: a file was left"
run "$R" -t 3 rtsp://127.0.0.1:8599/cam -o none.webm 2>err4
expect_rc 4 "no camera"
[[ ! -e none.webm ]] || fail "no camera: a file was left"
pass "a refused password and a missing camera exit 4 and leave no file"

# 4. A camera's first seconds are on disk at once: killed 2.2 s after both its streams came,
#    the file holds at least 1 s of video and of audio. parsebin 1.22 never says no-more-pads,
#    and kms-record used to hold every camera for a 2.5 s fallback from then: the same kill
#    left no frame.
"$R" rtsp://127.0.0.1:8554/cam -o early.mkv --events ev5.jsonl 2>err5 &
rec=$!; PIDS+=($rec)
for i in $(seq 100); do
  jq -se '[.[] | select(.type == "track")] | length == 2' ev5.jsonl >/dev/null 2>&1 && break
  (( i < 100 )) || fail "4: both tracks were not announced within 10 s: $(cat ev5.jsonl err5)"
  sleep 0.1
done
sleep 2.2
kill -9 $rec; wait $rec 2>/dev/null || true
v=$(stream_secs early.mkv v:0); a=$(stream_secs early.mkv a:0)
within 1 "$v" && within 1 "$a" || fail "killed 2.2 s in: $v s of video, $a s of audio: $(cat ev5.jsonl)"
pass "a camera is recorded from its first second: $v s of video, $a s of audio when killed 2.2 s in"

# 5. A camera that hangs mid-recording (SIGSTOP: no packet, no BYE, the RTSP connection
# silent). GStreamer waits for it without a word; kms-record says so after 5 s (a media-flow
# "stalled" event and a warning), records on, and says when it is back. With --media-timeout
# it finalises what came and exits 6 instead.
camera 8556 "( $V ! vp8enc deadline=1 keyframe-max-dist=15 ! rtpvp8pay name=pay0 pt=96 )"
CAM=${PIDS[-1]}
flowing() { for _ in $(seq 100); do grep -q '"flowing"' "$1" 2>/dev/null && return; sleep 0.1; done; fail "no media-flow in $1"; }
"$R" -t 13 rtsp://127.0.0.1:8556/cam -o hang.webm --events ev5.jsonl 2>err5 & PIDS+=($!); p=$!
flowing ev5.jsonl; sleep 1; kill -STOP "$CAM"; sleep 7; kill -CONT "$CAM"
set +e; wait "$p"; RC=$?; set -e
expect_rc 0 "a camera that hung for 7 s"
jq -se '[.[] | select(.type == "media-flow") | .state] == ["flowing", "stalled", "flowing"]' \
  ev5.jsonl >/dev/null || fail "hang: media-flow events $(grep media-flow ev5.jsonl)"
grep -q "warning: no video from rtsp://127.0.0.1:8556/cam for [56] s" err5 || fail "hang: no warning: $(cat err5)"
grep -q "flowing again after [67] s" err5 || fail "hang: not said to be back: $(cat err5)"
d=$(duration hang.webm)
within "$(echo "($d - 13)^2" | bc -l)" 1 || fail "hang: $d s for -t 13"
pass "a camera that hangs 7 s is reported stalled and then flowing; $d s recorded for -t 13"

"$R" rtsp://127.0.0.1:8556/cam -o gone.webm --media-timeout 3 --events ev6.jsonl 2>err6 & PIDS+=($!); p=$!
flowing ev6.jsonl; sleep 2; kill -STOP "$CAM"; start=$(date +%s.%N)
set +e; wait "$p"; RC=$?; set -e
secs=$(echo "$(date +%s.%N) - $start" | bc); kill -CONT "$CAM"
expect_rc 6 "--media-timeout 3 and a camera that hangs"
within "$secs" 6 || fail "--media-timeout 3: exit after ${secs}s of silence"
grep -q "no media from rtsp://127.0.0.1:8556/cam for 3 s (--media-timeout); what came is in gone.webm" err6 ||
  fail "--media-timeout mid-recording: message $(cat err6)"
d=$(duration gone.webm)
[[ $d != N/A ]] && within 1.5 "$d" || fail "--media-timeout mid-recording: gone.webm holds $d s"
pass "--media-timeout ends a recording whose camera hung with 6 after ${secs}s, keeping its $d s"

# 6. A camera that goes away mid-recording (killed; over UDP rtspsrc fails): what came is
# finalised, a file and the last segment alike, and the failure is the status (4).
camera 8557 "( $V ! vp8enc deadline=1 keyframe-max-dist=15 ! rtpvp8pay name=pay0 pt=96 )"
CAM=${PIDS[-1]}
mkdir -p segs
"$R" rtsp://127.0.0.1:8557/cam -o dead.mkv --events ev7.jsonl 2>err7 & PIDS+=($!); p=$!
"$R" rtsp://127.0.0.1:8557/cam -o 'segs/s-%i.mkv' --segment 2 --json \
  --on-segment 'echo "$KMS_SEGMENT_PATH" >>segs/hook.txt' >res8.json 2>err8 & PIDS+=($!); q=$!
flowing ev7.jsonl; sleep 4; kill -9 "$CAM"
set +e; wait "$p"; RC=$?; set -e
expect_rc 4 "a camera killed mid-recording"
d=$(duration dead.mkv)
[[ $d != N/A ]] && within 3 "$d" || fail "camera killed: dead.mkv not finalised ($d s): $(cat err7)"
set +e; wait "$q"; RC=$?; set -e
expect_rc 4 "a camera killed mid-recording, segments"
n=$(jq '.files | length' res8.json)
last=$(jq -r '.files[-1].path' res8.json)
((n >= 2)) && [[ $(tail -1 segs/hook.txt) == "$last" ]] ||
  fail "camera killed: the last segment was not reported: $(cat res8.json) hook: $(cat segs/hook.txt)"
[[ $(duration "$last") != N/A ]] || fail "camera killed: $last not finalised"
pass "a camera killed mid-recording: 4, dead.mkv finalised with $d s, the last of $n segments reported"

# 7. Segments of a camera passed through are named by when their first frame came, not by when
# splitmuxsink opened them (a whole GOP later): key frames 3 s apart, --segment 1, names in
# epoch seconds 3 s apart from the start (they were 6 s apart after the first).
camera 8558 "( $V ! vp8enc deadline=1 keyframe-max-dist=90 ! rtpvp8pay name=pay0 pt=96 )"
mkdir -p named; start=$(date +%s)
run "$R" -q rtsp://127.0.0.1:8558/cam -o 'named/s-%s.mkv' --segment 1 -t 10
expect_rc 0 "segments of a camera with 3 s GOPs"
mapfile -t names < <(ls named | sed 's/^s-\([0-9]*\)\.mkv$/\1/' | sort -n)
((${#names[@]} >= 3)) || fail "segment names: ${names[*]}"
for i in 0 1; do
  want=$((start + 3 * i)); got=${names[$i]}
  (( got >= want - 1 && got <= want + 1 )) ||
    fail "segment $i named $((got - start)) s after the start, not $((3 * i)): ${names[*]}"
done
pass "segments of a camera with 3 s key frames are named by their first frame: ${names[*]/#/+} (start $start)"
