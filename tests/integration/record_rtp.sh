#!/usr/bin/env bash
# kms-record from rtp://ADDR:PORT?sdp=FILE: gst-launch-1.0 sends RTP on loopback, the SDP file
# says what it carries. Untouched VP8+Opus into WebM; a sender that restarts at 1280x720 after
# 640x360 (a new SSRC, a new size) recorded across the change in WebM, MKV and MP4, every frame
# of both sizes decoding in ffmpeg; bad SDP files and URIs refused with their exit codes.
. "$(dirname "$0")/../lib/kms-test.sh"
R=$BUILD/apps/kms-record
run() { set +e; "$@"; RC=$?; set -e; }
codecs() { ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$1" | sort | paste -sd, -; }
# sizes FILE -> "N WxH" lines, one per run of decoded frames of one size.
sizes() {
  ffprobe -v error -show_entries frame=width,height -of csv=p=0 "$1" | grep -E '^[0-9]+,[0-9]+$' |
    uniq -c | awk '{ sub(",", "x", $2); print $1, $2 }'
}
port=$((20000 + (RANDOM % 2000) * 4))
sdp() {  # sdp FILE "m-lines..."
  printf 'v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=kms test\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n%b' "$2" >"$1"
}
sdp av.sdp 'm=video 5004 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\nm=audio 5006 RTP/AVP 97\r\na=rtpmap:97 OPUS/48000/2\r\n'
sdp vp8.sdp 'm=video 5004 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n'
sdp h264.sdp 'm=video 5004 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n'
# send W H FRAMES ENCODER PAYLOADER: live bars for FRAMES/30 s to the video port.
send() {
  gst-launch-1.0 -q videotestsrc is-live=true pattern=ball num-buffers="$3" \
    ! video/x-raw,width="$1",height="$2",framerate=30/1 ! $4 ! $5 pt=96 \
    ! udpsink host=127.0.0.1 port=$port
}
VP8="vp8enc deadline=1 keyframe-max-dist=30"
# No sliced threads (tune=zerolatency): one buffer per frame, as cameras send.
H264="x264enc speed-preset=ultrafast key-int-max=30 bframes=0"

# 1. VP8 and Opus into WebM, untouched; the SDP's audio port keeps its distance from the video's.
# The sender runs first; a passthrough recording starts at a key frame (every 1/3 s here).
gst-launch-1.0 -q videotestsrc is-live=true num-buffers=210 \
  ! video/x-raw,width=320,height=240,framerate=30/1 ! vp8enc deadline=1 keyframe-max-dist=10 \
  ! rtpvp8pay pt=96 ! udpsink host=127.0.0.1 port=$port \
  audiotestsrc is-live=true num-buffers=350 ! opusenc ! rtpopuspay pt=97 \
  ! udpsink host=127.0.0.1 port=$((port + 2)) & PIDS+=($!)
sleep 0.5
run "$R" -t 4 "rtp://127.0.0.1:$port?sdp=av.sdp" -o av.webm --events ev1.jsonl 2>err1
expect_rc 0 "rtp -> webm: $(tail -2 err1)"
[[ $(codecs av.webm) == "opus,vp8" ]] || fail "rtp -> webm: codecs $(codecs av.webm)"
jq -se '[.[] | select(.type=="track" and .passthrough)] | length == 2' ev1.jsonl >/dev/null ||
  fail "rtp -> webm: not both passthrough: $(cat ev1.jsonl)"
d=$(ffprobe -v error -show_entries format=duration -of csv=p=0 av.webm)
within "$(echo "($d - 4)^2" | bc -l)" 0.25 || fail "rtp -> webm: $d s for -t 4"
# Its events summarised by kms-stats: both streams, as they came, at the rate they were sent.
"$BUILD/apps/kms-stats" --events-in ev1.jsonl --json >sum1.json
fps=$(jq '[.inbound[] | select(.kind == "video")][0].framesPerSecond' sum1.json)
within 25 "$fps" && within "$fps" 32 || fail "kms-stats on the recording: $fps fps: $(cat sum1.json)"
jq -e '[.inbound[] | .codec] | sort == ["opus", "vp8"]' sum1.json >/dev/null ||
  fail "kms-stats on the recording: $(cat sum1.json)"
pass "RTP VP8+Opus into WebM, untouched, $d s for -t 4; kms-stats reads $fps fps in its events"
wait

# 1b. A sender that loses a tenth of its packets: the summary counts what never came.
gst-launch-1.0 -q videotestsrc is-live=true num-buffers=150 \
  ! video/x-raw,width=320,height=240,framerate=30/1 ! $VP8 ! rtpvp8pay pt=96 \
  ! identity drop-probability=0.1 ! udpsink host=127.0.0.1 port=$port & PIDS+=($!)
sleep 0.3
run "$R" -t 4 "rtp://127.0.0.1:$port?sdp=vp8.sdp" -o lossy.webm --json --events ev1b.jsonl \
  >res1b.json 2>err1b
expect_rc 0 "a lossy sender: $(tail -2 err1b)"
lost=$(jq -r '.packetsLost' res1b.json)
# Some 150 packets go out, a tenth dropped: a count far above that is counting twice.
[[ $lost =~ ^[0-9]+$ ]] && ((lost >= 3 && lost <= 40)) || fail "a lossy sender: packetsLost '$lost' in $(cat res1b.json)"
wait
pass "a sender dropping 10% of its packets: packetsLost $lost in the summary"

# 1c. The same recording's events are W3C inbound-rtp, as a call's are: kms-stats summarises
#     them (loss near the tenth dropped, the count kms-record gave) and judges them.
S=$BUILD/apps/kms-stats
"$S" --events-in ev1b.jsonl --json >sum1c.json
ratio=$(jq '[.inbound[] | select(.kind == "video")][0].lossRatio' sum1c.json)
within 0.03 "$ratio" && within "$ratio" 0.2 || fail "kms-stats on the recording: loss ratio $ratio: $(cat sum1c.json)"
jq -e --argjson n "$lost" '[.inbound[] | .packetsLost] | add == $n' sum1c.json >/dev/null ||
  fail "kms-stats counts other losses than kms-record's $lost: $(cat sum1c.json)"
run "$S" --events-in ev1b.jsonl --assert 'video.loss < 1%' -q 2>as1c.err
expect_rc 8 "kms-stats --assert 'video.loss < 1%' on the lossy recording"
run "$S" --events-in ev1b.jsonl --assert 'video.loss < 50%' -q
expect_rc 0 "kms-stats --assert 'video.loss < 50%' on the lossy recording"
pass "kms-stats summarises the recording's inbound-rtp events: loss ratio $ratio, as many lost; --assert judges them"

# 1c. Audio that starts 4 s after the video (a camera's audio encoder waking late): with
#     --tracks audio,video nothing is written until it comes, so the file holds both.
gst-launch-1.0 -q videotestsrc is-live=true num-buffers=240 \
  ! video/x-raw,width=320,height=240,framerate=30/1 ! vp8enc deadline=1 keyframe-max-dist=10 \
  ! rtpvp8pay pt=96 ! udpsink host=127.0.0.1 port=$port & PIDS+=($!)
(sleep 4; gst-launch-1.0 -q audiotestsrc is-live=true num-buffers=200 ! opusenc ! rtpopuspay pt=97 \
  ! udpsink host=127.0.0.1 port=$((port + 2))) & PIDS+=($!)
run "$R" -t 7 --tracks audio,video --tracks-timeout 8 "rtp://127.0.0.1:$port?sdp=av.sdp" -o late.webm \
  --events ev1c.jsonl 2>err1c
expect_rc 0 "late audio with --tracks: $(tail -2 err1c)"
[[ $(codecs late.webm) == "opus,vp8" ]] || fail "late audio with --tracks: codecs $(codecs late.webm)"
! jq -se '[.[] | select(.type=="track-missing")] | length > 0' ev1c.jsonl >/dev/null ||
  fail "late audio with --tracks: reported missing"
wait
# Without --tracks the audio comes after the file has begun: it is left out with a warning,
# and the recording goes on (it used to fail with 7, "Could not multiplex stream ... disk full?").
gst-launch-1.0 -q videotestsrc is-live=true num-buffers=180 \
  ! video/x-raw,width=320,height=240,framerate=30/1 ! vp8enc deadline=1 keyframe-max-dist=10 \
  ! rtpvp8pay pt=96 ! udpsink host=127.0.0.1 port=$port & PIDS+=($!)
(sleep 4; gst-launch-1.0 -q audiotestsrc is-live=true num-buffers=100 ! opusenc ! rtpopuspay pt=97 \
  ! udpsink host=127.0.0.1 port=$((port + 2))) & PIDS+=($!)
run "$R" -q -t 6 "rtp://127.0.0.1:$port?sdp=av.sdp" -o late2.webm 2>err1c2
expect_rc 0 "late audio without --tracks: $(tail -2 err1c2)"
[[ $(codecs late2.webm) == "vp8" ]] || fail "late audio without --tracks: codecs $(codecs late2.webm)"
grep -q "audio is left out.*--tracks waits for it" err1c2 || fail "late audio without --tracks: $(cat err1c2)"
wait
pass "audio 4 s late with --tracks audio,video: the file holds both; without, video only and a warning"

# 2. A sender that restarts at 1280x720 after 640x360: one file holds both, every frame decodes.
across() {  # across EXT SDP ENCODER PAYLOADER
  local out=size.$1
  (sleep 0.5; send 640 360 75 "$3" "$4"; send 1280 720 75 "$3" "$4") & PIDS+=($!)
  run "$R" -t 8 "rtp://127.0.0.1:$port?sdp=$2" -o "$out" --events "ev-$1.jsonl" 2>"err-$1"
  wait
  expect_rc 0 "size change into $1: $(tail -2 "err-$1")"
  ffmpeg -v error -xerror -i "$out" -f null - 2>"dec-$1" ||
    fail "size change into $1: ffmpeg cannot decode it: $(head -3 "dec-$1")"
  local got
  got=$(sizes "$out" | paste -sd' ' -)
  [[ $got =~ ^([0-9]+)\ 640x360\ ([0-9]+)\ 1280x720$ ]] ||
    fail "size change into $1: decoded frames by size: '$got'"
  # A restarted sender's first packets may fall to the jitter buffer (new sequence numbers)
  # and the depayloader then waits for the next key frame: a second (30 frames) at most.
  ((BASH_REMATCH[1] >= 40 && BASH_REMATCH[2] >= 40)) ||
    fail "size change into $1: too few frames: '$got'"
  jq -se '[.[] | select(.type=="size-change" and .from=="640x360" and .to=="1280x720")]
    | length == 1' "ev-$1.jsonl" >/dev/null || fail "size change into $1: events $(cat "ev-$1.jsonl")"
  pass "RTP ${4%pay} 640x360 then 1280x720 (a new sender) into one $1 file: $got frames"
}
across webm vp8.sdp "$VP8" rtpvp8pay
across mkv h264.sdp "$H264" rtph264pay
across mp4 h264.sdp "$H264" rtph264pay

# 3. What the URI and the SDP file get wrong: 2 for the URI, 3 for the file, before any file.
run "$R" -t 2 "rtp://127.0.0.1:$port" -o none.webm 2>err3a
expect_rc 2 "rtp:// without sdp="
grep -q 'sdp=FILE' err3a || fail "rtp:// without sdp=: $(cat err3a)"
run "$R" -t 2 "rtp://127.0.0.1:$port?sdp=missing.sdp" -o none.webm 2>err3b
expect_rc 3 "a missing SDP file"
grep -q 'missing.sdp' err3b || fail "a missing SDP file: $(cat err3b)"
printf 'v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 5004 RTP/AVP\r\n' >bad.sdp
run "$R" -t 2 "rtp://127.0.0.1:$port?sdp=bad.sdp" -o none.webm 2>err3c
expect_rc 3 "an SDP with a broken m= line"
grep -q 'bad.sdp:5' err3c || fail "the broken SDP line is not named: $(cat err3c)"
sdp data.sdp 'm=application 5004 UDP/DTLS/SCTP webrtc-datachannel\r\n'
run "$R" -t 2 "rtp://127.0.0.1:$port?sdp=data.sdp" -o none.webm 2>err3d
expect_rc 3 "an SDP with no RTP stream"
[[ ! -s none.webm ]] || fail "a refused rtp:// source left a file with data"
pass "rtp:// without sdp= gives 2; a missing, broken or streamless SDP file gives 3"

# 4. Nothing sent before -t ends: 6 at once, no file, the JSON result says why. A port another
# process holds: 4, naming the address. A codec no depayloader takes: 3 when the SDP is read.
start=$(date +%s.%N)
run "$R" -t 2 "rtp://127.0.0.1:$port?sdp=vp8.sdp" -o silent.webm --json >res4a.json 2>err4a
took=$(echo "$(date +%s.%N) - $start" | bc)
expect_rc 6 "no sender"
within "$took" 4 || fail "no sender: the stop took $took s"
[[ ! -e silent.webm ]] || fail "no sender: an empty file was left"
jq -e '.error | test("no media")' res4a.json >/dev/null || fail "no sender: JSON $(cat res4a.json)"
python3 -c "import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', $port)); time.sleep(4)" &
holder=$!; PIDS+=($holder)
sleep 0.5
run "$R" -t 2 "rtp://127.0.0.1:$port?sdp=vp8.sdp" -o busy.webm 2>err4b
expect_rc 4 "a port in use"
kill "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true
grep -q "127.0.0.1:$port" err4b && grep -qi 'in use' err4b || fail "a port in use: $(cat err4b)"
sdp foo.sdp 'm=video 5004 RTP/AVP 96\r\na=rtpmap:96 FOO/90000\r\n'
run "$R" -t 2 "rtp://127.0.0.1:$port?sdp=foo.sdp" -o foo.webm 2>err4c
expect_rc 3 "an unknown codec"
grep -q 'FOO' err4c || fail "an unknown codec: $(cat err4c)"
pass "no sender: 6 after ${took}s, no file; a port in use: 4 naming it; codec FOO: 3"

# 5. kms-stats and kms-filter take the same rtp:// URI: what the sender sent, measured and
# filtered (VP8 at 30 frames a second, a key frame a second; a flipped picture decodes).
gst-launch-1.0 -q videotestsrc is-live=true num-buffers=150 \
  ! video/x-raw,width=320,height=240,framerate=30/1 ! $VP8 ! rtpvp8pay pt=96 \
  ! udpsink host=127.0.0.1 port=$port & PIDS+=($!)
run "$BUILD/apps/kms-stats" -t 3 --json "rtp://127.0.0.1:$port?sdp=vp8.sdp" >stats.json 2>err5a
expect_rc 0 "kms-stats rtp://: $(tail -1 err5a)"
jq -e '[.tracks[] | select(.kind=="video")][0] | .width == 320 and .height == 240 and
  (.framesPerSecond > 28 and .framesPerSecond < 32) and (.keyFrameInterval > 0.9 and .keyFrameInterval < 1.1)' stats.json \
  >/dev/null || fail "kms-stats rtp://: $(cat stats.json)"
wait
gst-launch-1.0 -q videotestsrc is-live=true num-buffers=150 \
  ! video/x-raw,width=320,height=240,framerate=30/1 ! $VP8 ! rtpvp8pay pt=96 \
  ! udpsink host=127.0.0.1 port=$port & PIDS+=($!)
run "$BUILD/apps/kms-filter" -q -t 3 -i "rtp://127.0.0.1:$port?sdp=vp8.sdp" -o flipped.webm flip
expect_rc 0 "kms-filter rtp://"
ffmpeg -v error -xerror -i flipped.webm -f null - || fail "kms-filter rtp://: the output does not decode"
wait
pass "kms-stats measures an rtp:// sender (320x240, 30 fps, a key frame a second); kms-filter flips it"
