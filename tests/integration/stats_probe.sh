#!/usr/bin/env bash
# kms-stats probe (issue 10): files made here with known properties are measured within 2 %
# (frame rate, resolution, duration, bitrate), key-frame intervals and a 2-second hole are found,
# the audio/video start offset is measured, live test: and rtsp:// sources are measured for -t,
# stdin is read, bad input exits 3 (an absent camera 4), and --assert and --prometheus work on a
# probe.
. "$(dirname "$0")/../lib/kms-test.sh"
S=$BUILD/apps/kms-stats
run() { set +e; "$@"; RC=$?; set -e; }
# near VALUE EXPECTED PERCENT: |VALUE - EXPECTED| <= PERCENT % of EXPECTED
near() { awk -v v="$1" -v e="$2" -v p="$3" 'BEGIN { d = v - e; if (d < 0) d = -d; exit !(d <= e * p / 100) }'; }
# ffprobe's own figure for a stream, as the reference: probe_ref FILE SEL ENTRY
ref() { ffprobe -v error -select_streams "$2" -show_entries "stream=$3" -of csv=p=0 "$1" | head -1; }
# Bits of stream SEL over its packets' span, as ffprobe counts them: the reference bitrate.
ref_bitrate() {
  ffprobe -v error -select_streams "$2" -show_entries packet=pts_time,duration_time,size -of csv=p=0 "$1" |
    awk -F, 'NR == 1 || $1 < a { a = $1 } { e = $1 + $2; if (e > b) b = e; s += $3 } END { printf "%.0f\n", s * 8 / (b - a) }'
}

# 1. H.264 at 25 fps, 320x240, 6 s, a key frame every 50 frames; AAC beside it.
gst-launch-1.0 -q -e videotestsrc num-buffers=150 pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 \
  ! x264enc speed-preset=ultrafast key-int-max=50 bitrate=400 ! h264parse ! mp4mux name=m ! filesink location=h264.mp4 \
  audiotestsrc num-buffers=300 samplesperbuffer=960 ! audio/x-raw,rate=48000 ! avenc_aac ! m.
run "$S" --json h264.mp4 >p1.json 2>err1
expect_rc 0 "probe h264.mp4"
v='.tracks[] | select(.kind=="video")'
jq -e "[$v] | length == 1" p1.json >/dev/null || fail "h264.mp4: no single video track: $(cat p1.json)"
[[ $(jq -r "$v | .media" p1.json) == video/x-h264 ]] || fail "h264.mp4: media $(jq -r "$v | .media" p1.json)"
[[ $(jq -r "$v | \"\(.width)x\(.height)\"" p1.json) == 320x240 ]] || fail "h264.mp4: resolution"
fps=$(jq -r "$v | .framesPerSecond" p1.json); near "$fps" 25 2 || fail "h264.mp4: $fps fps, expected 25"
dur=$(jq -r "$v | .duration" p1.json); near "$dur" 6 2 || fail "h264.mp4: video $dur s, expected 6"
br=$(jq -r "$v | .bitrate" p1.json); rb=$(ref_bitrate h264.mp4 v:0)
near "$br" "$rb" 2 || fail "h264.mp4: video bitrate $br, ffprobe's packets give $rb"
peak=$(jq -r "$v | .peakBitrate" p1.json)
(( peak >= br * 95 / 100 )) || fail "h264.mp4: peak $peak below the average $br"
[[ $(jq -r "$v | .keyFrames" p1.json) == 3 ]] || fail "h264.mp4: $(jq -r "$v | .keyFrames" p1.json) key frames, expected 3"
ki=$(jq -r "$v | .keyFrameInterval" p1.json); near "$ki" 2 2 || fail "h264.mp4: key frame every $ki s, expected 2"
[[ $(jq -r "$v | .keyFrameIntervalFrames" p1.json) == 50 ]] || fail "h264.mp4: key frame interval in frames"
jq -e '.tracks[] | select(.kind=="audio") | .media == "audio/mpeg" and .rate == 48000' p1.json >/dev/null ||
  fail "h264.mp4: audio track $(jq -c '.tracks[] | select(.kind=="audio")' p1.json)"
jq -e '[.tracks[].gaps | length] | add == 0' p1.json >/dev/null || fail "h264.mp4: gaps where there are none"
pass "H.264/AAC MP4: $fps fps, 320x240, $dur s, $br bit/s (ffprobe $rb), peak $peak, key frame every $ki s"

# The same as text for people: one block per track.
run "$S" h264.mp4 >p1.txt
expect_rc 0 "probe h264.mp4 as text"
grep -q "^video: H.264.*320x240" p1.txt && grep -q "key frames    3, every 2.00 s (50.0 frames)" p1.txt ||
  fail "h264.mp4 text: $(cat p1.txt)"

# 2. A constant bitrate by construction: 16-bit stereo PCM at 48 kHz is 1536 kbit/s exactly.
gst-launch-1.0 -q -e audiotestsrc num-buffers=250 samplesperbuffer=960 \
  ! audio/x-raw,format=S16LE,rate=48000,channels=2 ! matroskamux ! filesink location=pcm.mkv
run "$S" --json pcm.mkv >p2.json
expect_rc 0 "probe pcm.mkv"
a='.tracks[0]'
br=$(jq -r "$a.bitrate" p2.json); near "$br" 1536000 2 || fail "pcm.mkv: $br bit/s, expected 1536000"
pk=$(jq -r "$a.peakBitrate" p2.json); near "$pk" 1536000 2 || fail "pcm.mkv: peak $pk bit/s, expected 1536000"
dur=$(jq -r "$a.duration" p2.json); near "$dur" 5 2 || fail "pcm.mkv: $dur s, expected 5"
jq -e "$a | .rate == 48000 and .channels == 2 and .frames == 250" p2.json >/dev/null || fail "pcm.mkv: $(cat p2.json)"
pass "PCM in Matroska: $br bit/s (1536000 by construction), $dur s"

# 2b. ffmpeg's mono AAC in Matroska and MP4: the rate and channels ffprobe reads (1.22's demuxers
#     said 88200 Hz for the first, 2 channels for the second).
ffmpeg -v error -f lavfi -i sine=d=2 -c:a aac aac.mkv
ffmpeg -v error -f lavfi -i sine=d=2 -c:a aac aac.m4a
for f in aac.mkv aac.m4a; do
  run "$S" --json $f >p2b.json
  expect_rc 0 "probe $f"
  want=$(ffprobe -v error -show_entries stream=sample_rate,channels -of csv=p=0 $f)
  got=$(jq -r '.tracks[0] | "\(.rate),\(.channels)"' p2b.json)
  [[ $got == "$want" ]] || fail "$f: rate,channels $got; ffprobe $want"
done
pass "ffmpeg's mono AAC in .mkv and .m4a: $got, as ffprobe reads it"

# 3. VP8 in WebM at 30 fps, 640x360, 4 s.
gst-launch-1.0 -q -e videotestsrc num-buffers=120 ! video/x-raw,width=640,height=360,framerate=30/1 \
  ! vp8enc deadline=1 keyframe-max-dist=30 ! webmmux ! filesink location=vp8.webm
run "$S" --json vp8.webm >p3.json
expect_rc 0 "probe vp8.webm"
jq -e '.tracks[0] | .media == "video/x-vp8" and .width == 640 and .height == 360' p3.json >/dev/null ||
  fail "vp8.webm: $(cat p3.json)"
fps=$(jq -r '.tracks[0].framesPerSecond' p3.json); near "$fps" 30 2 || fail "vp8.webm: $fps fps"
dur=$(jq -r '.tracks[0].duration' p3.json); near "$dur" 4 2 || fail "vp8.webm: $dur s"
br=$(jq -r '.tracks[0].bitrate' p3.json); rb=$(ref_bitrate vp8.webm v:0)
near "$br" "$rb" 2 || fail "vp8.webm: $br bit/s, ffprobe's packets give $rb"
ki=$(jq -r '.tracks[0].keyFrameInterval' p3.json); near "$ki" 1 2 || fail "vp8.webm: key frame every $ki s"
jq -e '.declaredDuration > 3.9 and .cutShort == false' p3.json >/dev/null || fail "vp8.webm: header $(jq -c '[.declaredDuration, .cutShort]' p3.json)"
# The same file cut to its first third (a recording killed, a download cut off): it still plays,
# and kms-stats says it ends 2.7 s before its header says it should (it said nothing).
head -c $(( $(stat -c %s vp8.webm) / 3 )) vp8.webm >cut.webm
run "$S" --json cut.webm >p3c.json 2>p3c.err
expect_rc 0 "probe a cut file"
jq -e '.cutShort == true and .duration < 2' p3c.json >/dev/null || fail "cut.webm: $(jq -c '[.duration, .declaredDuration, .cutShort]' p3c.json)"
grep -q "cut short" p3c.err || fail "cut.webm: no warning: $(cat p3c.err)"
pass "VP8 WebM: $fps fps, 640x360, $dur s, $br bit/s (ffprobe $rb), key frame every $ki s; cut to a third, it is called cut short"

# 4. A 2-second hole: frames 0-59 at 30 fps, then frames from 4.0 s on (ffmpeg moves them on).
ffmpeg -v error -f lavfi -i testsrc=duration=4:size=320x240:rate=30 -vf "setpts='if(gte(N,60),PTS+2/TB,PTS)'" \
  -c:v libx264 -preset ultrafast -fps_mode passthrough gap.mkv
run "$S" --json gap.mkv >p4.json
expect_rc 0 "probe gap.mkv"
jq -e '.tracks[0].gaps | length == 1' p4.json >/dev/null || fail "gap.mkv: gaps $(jq -c '.tracks[0].gaps' p4.json)"
at=$(jq -r '.tracks[0].gaps[0].at' p4.json); len=$(jq -r '.tracks[0].gaps[0].length' p4.json)
near "$at" 2 2 || fail "gap.mkv: the hole is at $at s, expected 2"
near "$len" 2 2 || fail "gap.mkv: the hole is $len s long, expected 2"
fps=$(jq -r '.tracks[0].framesPerSecond' p4.json); near "$fps" 30 2 || fail "gap.mkv: $fps fps beside the hole"
run "$S" gap.mkv >p4.txt
grep -q "gap           at 2.00 s, 2.00 s long" p4.txt || fail "gap.mkv text: $(cat p4.txt)"
run "$S" -q gap.mkv --assert 'gaps == 0' 2>a4
expect_rc 8 "--assert 'gaps == 0' on gap.mkv"
grep -qx "kms-stats: assertion failed: gaps == 0: measured 1" a4 || fail "gap assertion message: $(cat a4)"
pass "a 2 s hole is reported at $at s, $len s long, and 'gaps == 0' fails with 8"

# 5. Audio that starts 0.5 s after the video (PCM: no codec delay blurs the start).
ffmpeg -v error -f lavfi -i testsrc=duration=3:size=160x120:rate=30 -itsoffset 0.5 -f lavfi -i sine=duration=3 \
  -c:v libx264 -preset ultrafast -c:a pcm_s16le late.mkv
run "$S" --json late.mkv >p5.json
expect_rc 0 "probe late.mkv"
off=$(jq -r '.avOffset' p5.json); near "$off" 0.5 2 || fail "late.mkv: audio/video offset $off s, expected 0.5"
run "$S" -q late.mkv --assert 'av.offset < 100ms' 2>a5
expect_rc 8 "--assert 'av.offset < 100ms'"
grep -q "av.offset < 100ms: measured 500ms" a5 || fail "offset assertion message: $(cat a5)"
pass "audio 0.5 s late: avOffset $off"

# 6. A live source is measured for -t seconds: 15 fps at 320x240 for 2 s.
start=$(date +%s.%N)
run "$S" -t 2 --json 'test:video?width=320&height=240&fps=15' >p6.json
took=$(echo "$(date +%s.%N) - $start" | bc)
expect_rc 0 "probe test: -t 2"
jq -e '.live and (.measuredFor >= 1.9) and .tracks[0].width == 320' p6.json >/dev/null || fail "test: $(cat p6.json)"
fps=$(jq -r '.tracks[0].framesPerSecond' p6.json); near "$fps" 15 2 || fail "test: $fps fps, expected 15"
within "$took" 4 || fail "test: -t 2 took $took s"
pass "a live test: source measured for 2 s ($took s): $fps fps"

# 7. Bad input: a file that is not media, and one that does not exist, exit 3 naming it.
printf 'not media at all\n' >junk.mp4
run "$S" junk.mp4 2>e7
expect_rc 3 "junk file"
grep -q "junk.mp4" e7 || fail "junk file message: $(cat e7)"
run "$S" missing.mp4 2>e7b
expect_rc 3 "missing file"
grep -q "missing.mp4: no such file" e7b || fail "missing file message: $(cat e7b)"
# An http:// server that is not there is the network's failure (4), named: it was 3, "Internal
# data stream error". Port 9 on loopback: nothing listens (discard is not served here).
run timeout 20 "$S" http://127.0.0.1:9/a.webm 2>e7c
expect_rc 4 "an http:// server that is not there"
grep -q "127.0.0.1:9/a.webm" e7c || fail "http:// not there: $(cat e7c)"
# A line cut short at the end of an event file (its writer killed mid-line) is left out with a
# warning; the lines before it are summarised (it was 3, and nothing).
printf '%s\n%s' '{"type":"track","timestamp":1000,"direction":"in","kind":"video","codec":"vp8"}' \
  '{"type":"inbound-rtp","timestamp":2000,"kind":"vid' >cut.jsonl
run "$S" --events-in cut.jsonl --json >cut.json 2>e7d
expect_rc 0 "an event file whose last line is cut short"
grep -q "cut short" e7d || fail "a cut last line: no warning: $(cat e7d)"
jq -e '.events == 1' cut.json >/dev/null || fail "a cut last line: $(cat cut.json)"
printf '%s\n%s\n' '{"type":"inbound-rtp","timestamp":2000,"kind":"vid' \
  '{"type":"track","timestamp":1000,"direction":"in","kind":"video","codec":"vp8"}' >mid.jsonl
run "$S" --events-in mid.jsonl 2>e7e
expect_rc 3 "a broken line that is not the last"
run "$S" </dev/null 2>e7f
expect_rc 3 "no events on stdin"
grep -q "no events" e7f || fail "no events on stdin: $(cat e7f)"
pass "bad input exits 3; an http:// server not there 4; a cut last line is left out with a warning"

# 8. Thresholds and Prometheus on a probe: hold (0), fail (8), malformed (2, a caret under 'x').
run "$S" -q h264.mp4 --assert 'video.fps >= 24' --assert 'video.bitrate > 50kbps' --assert 'duration < 7s'
expect_rc 0 "assertions that hold"
run "$S" -q h264.mp4 --assert 'video.fps >= 24' --assert 'video.keyframe.interval < 1s' 2>e8
expect_rc 8 "a failing assertion"
grep -q "assertion failed: video.keyframe.interval < 1s: measured 2.00s" e8 || fail "failure message: $(cat e8)"
! grep -q "video.fps" e8 || fail "a holding assertion reported as failed: $(cat e8)"
run "$S" h264.mp4 --assert 'video.fps >= 2x' 2>e8b
expect_rc 2 "malformed assertion"
[[ $(sed -n 2p e8b) == "  video.fps >= 2x" && $(sed -n 3p e8b) == "                ^" ]] ||
  fail "malformed assertion: no caret under the x: $(cat -A e8b)"
run "$S" -q h264.mp4 --prometheus probe.prom
expect_rc 0 "--prometheus"
grep -q '^kms_probe_frames_per_second{kind="video",media="video/x-h264",track="[0-9]"} 25' probe.prom || fail "probe.prom: $(cat probe.prom)"
grep -q '^# TYPE kms_probe_bitrate_bits_per_second gauge$' probe.prom || fail "probe.prom has no TYPE line"
grep -q '^kms_stats_last_run_timestamp_seconds [0-9]' probe.prom || fail "probe.prom: no last-run time"
! grep -E '^[a-z_]+_total[{ ]' probe.prom || fail "probe.prom: a gauge named _total"
# Two audio tracks of one codec (two languages): every series once, or node_exporter refuses it.
gst-launch-1.0 -q audiotestsrc num-buffers=50 ! opusenc ! m. audiotestsrc num-buffers=50 freq=880 ! opusenc ! m. \
  matroskamux name=m ! filesink location=two-audio.mkv
run "$S" -q two-audio.mkv --prometheus two.prom
expect_rc 0 "--prometheus, two audio tracks"
dups=$(grep -v '^#' two.prom | cut -d' ' -f1 | sort | uniq -d)
[[ -z $dups ]] || fail "two audio tracks: series written twice: $dups"
grep -Eq '^kms_probe_frames\{kind="audio",media="audio/x-opus",track="1"\} [4-6][0-9]$' two.prom || fail "two.prom: $(cat two.prom)"
pass "--assert 0/8/2 and --prometheus on a probe (each series once with two tracks of one codec)"

# 9. A live RTSP camera on loopback (VP8 at 25 fps, a key frame a second, and Opus), measured for
# -t 3 after depayloading, and a WebM on stdin.
"$BUILD/tests/rtsp-test-camera" 8554 "( videotestsrc is-live=1 ! video/x-raw,width=320,height=240,framerate=25/1 \
  ! vp8enc deadline=1 keyframe-max-dist=25 ! rtpvp8pay name=pay0 pt=96 audiotestsrc is-live=1 ! opusenc \
  ! rtpopuspay name=pay1 pt=97 )" >cam.out 2>cam.err & PIDS+=($!)
ready "the RTSP camera" 10 grep -q ready cam.out
run "$S" -t 3 --json rtsp://127.0.0.1:8554/cam >p9.json 2>e9
expect_rc 0 "probe rtsp:// -t 3"
jq -e '.live and .measuredFor >= 2.9 and ([.tracks[].media] | sort == ["audio/x-opus","video/x-vp8"])' p9.json >/dev/null ||
  fail "rtsp: $(cat p9.json) $(cat e9)"
jq -e '.tracks[] | select(.kind=="video") | .width == 320 and .height == 240' p9.json >/dev/null || fail "rtsp: resolution"
fps=$(jq -r '.tracks[] | select(.kind=="video") | .framesPerSecond' p9.json); near "$fps" 25 2 || fail "rtsp: $fps fps"
ki=$(jq -r '.tracks[] | select(.kind=="video") | .keyFrameInterval' p9.json); near "$ki" 1 2 || fail "rtsp: key frame every $ki s"
run "$S" -t 2 rtsp://127.0.0.1:1/cam 2>e9b
expect_rc 4 "a camera that is not there"
run "$S" --json - <vp8.webm >p9b.json
expect_rc 0 "probe - (stdin)"
[[ $(jq -r '.tracks[0].frames' p9b.json) == 120 ]] || fail "stdin: $(cat p9b.json)"
pass "rtsp:// measured for 3 s: VP8 $fps fps, key frame every $ki s, and Opus; no camera exits 4; WebM on stdin"

# 10. SIGTERM ends a live measurement early: the figures so far, and exit 0.
bg live "$S" --json --events live.jsonl test:video >p10.json 2>e10
sleep 1.5
stop live
expect_rc 0 "a live probe stopped by SIGTERM"
jq -e '.measuredFor < 3 and .measuredFor > 1 and .tracks[0].frames > 20' p10.json >/dev/null || fail "SIGTERM: $(cat p10.json)"
[[ $(jq -s '[.[] | select(.type=="probe")][0].tracks[0].frames' live.jsonl) == $(jq '.tracks[0].frames' p10.json) ]] ||
  fail "the probe event does not carry the result"
run "$S" --json --events - h264.mp4 2>e10b
expect_rc 2 "--json and --events -"
pass "SIGTERM stops a live probe after $(jq .measuredFor p10.json) s with its figures; the result is also an event"
