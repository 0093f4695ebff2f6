#!/usr/bin/env bash
# Files and stdin as the source: media already in the negotiated codec is sent untouched
# (passthrough), other media is decoded and encoded; either way it is paced at real time and the
# call ends by itself, cleanly, when the input ends.
. "$(dirname "$0")/../lib/kms-test.sh"

gst-launch-1.0 -q -e videotestsrc num-buffers=90 pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
  ! vp8enc deadline=1 ! webmmux name=m ! filesink location=vp8.webm audiotestsrc num-buffers=140 ! opusenc ! m.
gst-launch-1.0 -q -e videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 \
  ! x264enc ! mp4mux ! filesink location=h264.mp4

# The video packets of a file as MD5s, one per line (ffmpeg's framemd5 of the untouched stream).
video_md5s() { ffmpeg -v error -i "$1" -map 0:v:0 -c copy -f framemd5 - | awk -F, '!/^#/ { print $NF }' | sort -u; }
# The same, in the file's order.
video_md5s_ordered() { ffmpeg -v error -i "$1" -map 0:v:0 -c copy -f framemd5 - | awk -F, '!/^#/ { print $NF }'; }
# How many of the recording's video packets are byte for byte packets of the source.
same_packets() { comm -12 <(video_md5s "$1") <(video_md5s "$2") | wc -l; }

# file_call NAME "OFFER ARGS" WANT_PASSTHROUGH_VIDEO MIN_FRAMES [SOURCE]
# The answerer records what arrives; passthrough must deliver the source's own packets, byte for
# byte, and a re-encode must deliver none of them.
file_call() {
  local start end
  start=$(date +%s.%N)
  call_pair "$2" "-t 20 -o got.mkv"
  end=$(date +%s.%N)
  [[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; fail "$1: exits $RC_OFF/$RC_ANS"; }
  local pt frames secs
  pt=$(jq -s '[.[] | select(.type=="input" and .kind=="video")][0].passthrough' off.jsonl)
  [[ $pt == "$3" ]] || fail "$1: video passthrough $pt, expected $3"
  frames=$(jq -s '[.[] | select(.type=="summary")][0].videoFramesDecoded' ans.jsonl)
  (( frames >= $4 )) || fail "$1: the answerer decoded $frames video frames"
  jq -e -s '[.[] | select(.type=="input-ended")] | length == 1' off.jsonl >/dev/null ||
    { show_logs; jq -c 'select(.type | test("input|bye|closed|stopping|warning|ended"))' off.jsonl ans.jsonl >&2; fail "$1: no input-ended"; }
  if [[ -n ${5:-} ]]; then
    local same total
    same=$(same_packets got.mkv "$5"); total=$(video_md5s "$5" | wc -l)
    if [[ $3 == true ]]; then
      (( same * 10 >= total * 8 )) || fail "$1: only $same of $total source packets arrived untouched"
    else
      (( same == 0 )) || fail "$1: $same packets arrived untouched, yet it was to be re-encoded"
    fi
    echo "   $same of $total source video packets arrived byte for byte"
  fi
  secs=$(echo "$end - $start" | bc)
  # 3 s of media at real time, plus set-up: not a burst, and not the answerer's 20 s limit.
  (( $(echo "$secs > 2.5 && $secs < 10" | bc) )) || fail "$1: the call took ${secs}s"
  echo "ok: $1 (passthrough $pt, $frames frames decoded, ${secs}s)"
}

file_call "VP8/Opus WebM, passthrough" "--send vp8.webm" true 80 vp8.webm
jq -e -s '[.[] | select(.type=="input" and .kind=="audio")][0].passthrough' off.jsonl >/dev/null || fail "opus not passed through"
file_call "H.264 MP4 into a VP8 call, transcoded" "--send file://$WORK/h264.mp4" false 65
# A live source beside the file does not keep the call going once the file has ended.
file_call "a file beside a live source: the file's end ends the call" "--send vp8.webm --send test:audio" true 80
file_call "H.264 MP4 into an H.264 call, passthrough" "--send h264.mp4 --video-codec h264" true 80 h264.mp4
file_call "H.264 with --max-bitrate, transcoded to hold it" "--send h264.mp4 --video-codec h264 --max-bitrate 300" false 60 h264.mp4

# stdin: a Matroska/WebM stream piped in.
rm -f o a; mkfifo o a
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a --send - --events off.jsonl <vp8.webm 2>off.err &
PIDS+=($!); PID_off=$!
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a -t 20 --events ans.jsonl 2>ans.err </dev/null &
PIDS+=($!); PID_ans=$!
wait_for "$PID_off" 20; expect_rc 0 "offerer sending stdin"
wait_for "$PID_ans" 20; expect_rc 0 "answerer"
frames=$(jq -s '[.[] | select(.type=="summary")][0].videoFramesDecoded' ans.jsonl)
(( frames >= 80 )) || fail "stdin: $frames frames decoded"
echo "ok: stdin (${frames} frames decoded)"

# A peer that starts sending long after our pipeline started (a person pasting the offer, a
# slow peer): its packets carry running times of seconds, and the receive queues, sized in time,
# took their first packets for a queue already full and dropped them. For a file sent as it is,
# the first key frame is the only one. Here the answerer starts 6 s after the offerer, sending a
# 720p VP8 file with a single key frame (many packets back to back); the offerer's recording
# must start with that key frame and hold the file's frames.
gst-launch-1.0 -q -e videotestsrc num-buffers=60 pattern=ball ! video/x-raw,width=1280,height=720,framerate=30/1 \
  ! vp8enc deadline=1 keyframe-max-dist=1000 target-bitrate=4000000 ! webmmux name=m ! filesink location=one-key.webm \
  audiotestsrc num-buffers=100 ! opusenc ! m.
rm -f o a late.mkv; mkfifo o a
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a --events off.jsonl -o late.mkv -t 20 2>off.err &
PIDS+=($!); late_off=$!
sleep 6
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a --events ans.jsonl --send one-key.webm -t 20 2>ans.err &&
  RC=0 || RC=$?
wait_for $late_off 10
[[ $RC == 0 ]] || { show_logs; fail "late peer: the answerer exits $RC"; }
first_src=$(video_md5s_ordered one-key.webm | head -1)
first_rec=$(video_md5s_ordered late.mkv | head -1)
frames=$(same_packets late.mkv one-key.webm)
[[ $first_rec == "$first_src" ]] && (( frames >= 50 )) ||
  fail "late peer: the recording's first video packet is not the file's key frame, or only $frames of 60 frames"
echo "ok: a peer 6 s late: the recording starts with its one key frame ($frames of 60 frames untouched)"

# A file that is not media: bad input, 3.
head -c 20000 /dev/urandom >noise.webm
call_pair "--send noise.webm --ice-timeout 3" "-t 20 --ice-timeout 3"
[[ $RC_OFF == 3 ]] || { show_logs; fail "unreadable media: exit $RC_OFF, expected 3"; }
echo "ok: unreadable media exits 3"
pass "file sources"
