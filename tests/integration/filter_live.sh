#!/usr/bin/env bash
# kms-filter on a live RTSP camera (a loopback gst-rtsp-server, tests/lib/rtsp_server.c): the
# filter applies to what the camera sends, the run keeps real time (-t 3 takes about 3 s and
# writes about 3 s), the result counts the frames it had to drop, and an analysis filter leaves
# the camera's own packets untouched.
. "$(dirname "$0")/../lib/kms-test.sh"
F=$BUILD/apps/kms-filter
R=$BUILD/apps/kms-record
run() { set +e; "$@"; RC=$?; set -e; }
probe() { ffprobe -v error -select_streams "$2" -show_entries "stream=$3" -of csv=p=0 "$1"; }
psnr() {  # mean PSNR (dB) of the video of A against B; "inf" reads as 99
  ffmpeg -v info -nostats -i "$1" -i "$2" -lavfi "[0:v][1:v]psnr" -f null - 2>&1 |
    sed -n 's/.*average:\([0-9.inf]*\).*/\1/p' | sed 's/inf/99/' | tail -1
}
above() { (( $(echo "$1 > $2" | bc -l) )); }
duration() { ffprobe -v error -show_entries format=duration -of csv=p=0 "$1"; }
md5s() { ffmpeg -v error -i "$1" -map 0:v:0 -c copy -f framemd5 - | awk -F, '!/^#/ { print $NF }' | sort -u; }

# A camera showing still SMPTE bars (left and right differ, so a mirror shows; still, so any
# two frames of it compare) in VP8.
"$BUILD/tests/rtsp-test-camera" 8556 "( videotestsrc is-live=1 pattern=smpte \
  ! video/x-raw,width=320,height=240,framerate=30/1 \
  ! vp8enc deadline=1 keyframe-max-dist=15 target-bitrate=800000 ! rtpvp8pay name=pay0 pt=96 )" \
  >cam.out 2>cam.err & PIDS+=($!)
ready "the RTSP camera" 10 grep -q ready cam.out
CAM=rtsp://127.0.0.1:8556/cam

# The camera as it is, for reference: kms-record keeps its packets.
run "$R" -q -t 2 "$CAM" -o ref.webm
expect_rc 0 "kms-record of the camera"
ffmpeg -v error -i ref.webm -vf hflip -c:v rawvideo ref-hflip.mkv

# 1. flip on the camera: mirrored, VP8 again, 3 s for -t 3, in about 3 s.
start=$(date +%s.%N)
run "$F" -t 3 -i "$CAM" -o flip.webm flip --json --events flip.jsonl >flip.json 2>flip.err
took=$(echo "$(date +%s.%N) - $start" | bc)
expect_rc 0 "flip on rtsp:// ($(tail -2 flip.err))"
[[ $(probe flip.webm v:0 codec_name) == vp8 ]] || fail "flip on rtsp://: $(probe flip.webm v:0 codec_name)"
p_ref=$(psnr flip.webm ref-hflip.mkv); p_in=$(psnr flip.webm ref.webm)
# (Two lossy encodes apart, at kms's live bitrate: about 25 dB for the mirror, 7 for the input.)
above "$p_ref" 20 && ! above "$p_in" 15 ||
  fail "flip on rtsp://: PSNR $p_ref against the camera mirrored, $p_in against the camera"
d=$(duration flip.webm)
within "$(echo "($d - 3)^2" | bc -l)" 0.36 || fail "flip on rtsp://: $d s written for -t 3"
within "$took" 6 || fail "flip on rtsp://: -t 3 took $took s"
jq -e '.dropped | type == "number"' flip.json >/dev/null || fail "flip on rtsp://: no dropped count: $(cat flip.json)"
# The camera's stream in W3C inbound-rtp events, which kms-stats summarises: the rate it sends.
"$BUILD/apps/kms-stats" --events-in flip.jsonl --json >sum1.json
fps=$(jq '[.inbound[] | select(.kind == "video")][0].framesPerSecond' sum1.json)
within 25 "$fps" && within "$fps" 32 || fail "kms-stats on kms-filter's events: $fps fps: $(cat sum1.json)"
pass "flip on a live RTSP camera: mirrored (PSNR $p_ref dB), $d s written for -t 3 in $took s, $(jq .dropped flip.json) frames dropped; its events give $fps fps"

# 2. An analysis on the camera passes its packets through untouched, and says what it saw.
run "$F" -t 3 -i "$CAM" -o pass.webm qr --events qr.jsonl 2>qr.err
expect_rc 0 "qr on rtsp:// ($(tail -2 qr.err))"
same=$(comm -12 <(md5s pass.webm) <(md5s ref.webm) | wc -l)
(( same >= 1 )) || fail "qr on rtsp://: none of the camera's packets arrived untouched"
! grep -q '"code-found"' qr.jsonl || fail "qr on rtsp://: found a code in plain bars: $(grep code-found qr.jsonl)"
pass "qr on a live RTSP camera passes its packets through untouched ($same identical frames) and finds no code in bars"
