#!/usr/bin/env bash
# Issue 6, items 5-11 and 13-15: limits that hold, measured where a user would look (bytes in a
# recording, frames decoded, exit codes, seconds), never in the value kms-call meant to set.
. "$(dirname "$0")/../lib/kms-test.sh"

gst-launch-1.0 -q -e videotestsrc num-buffers=150 pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
  ! x264enc bframes=2 ! mp4mux name=m ! filesink location=x.mp4 audiotestsrc num-buffers=250 ! avenc_aac ! m.

# 5. --max-bitrate holds on the wire: the peer records what arrives; the default test pattern has
# a noise area that no quantizer compresses, so only a real rate controller (frame dropping) holds.
CALL_DEADLINE=20 call_pair "-t 7 --max-bitrate 300" "-t 7 -o capped.mkv"
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; fail "5: exits $RC_OFF/$RC_ANS"; }
rate=$(video_kbps capped.mkv 1.5 6.5)
echo "5: --max-bitrate 300 gives $rate kbit/s of video at the receiver"
(( rate >= 240 && rate <= 330 )) || fail "5: $rate kbit/s is not within 300 kbit/s -20%/+10%"
# The peer is bound by our b=AS too, and sends a picture that fits it: as libwebrtc does, the
# pixels of 320x180 below 300 kbit/s (of its 640x480: 276x206), at the full frame rate. Sent at 640x480,
# the pattern's noise made every frame about 3 kB and the encoder kept to the cap by sending 5
# frames a second, 97 to 145 kbit/s of it; now 152 to 157 in six runs, so -20%/+10% as above.
CALL_DEADLINE=20 call_pair "-t 7 --max-bitrate 150 -o peer.mkv" "-t 7"
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; fail "5: exits $RC_OFF/$RC_ANS"; }
peer=$(video_kbps peer.mkv 1.5 6.5)
frames=$(ffprobe -v error -select_streams v:0 -show_entries packet=pts_time -of csv=p=0 peer.mkv |
  awk '$1 >= 1.5 && $1 < 6.5' | wc -l)
size=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0:s=x peer.mkv)
echo "5: the peer, bound by our b=AS:150, sends $peer kbit/s, $size, $((frames / 5)) frames a second"
(( peer >= 120 && peer <= 165 )) || fail "5: the peer sent $peer kbit/s against b=AS:150"
w=${size%x*}; h=${size#*x}
(( w * h <= 320 * 180 && w * h > 300 * 170 && w * 300 / h >= 395 && w * 300 / h <= 405 )) ||
  fail "5: under b=AS:150 the peer sent $size, not 4:3 in the pixels of 320x180"
(( frames >= 100 )) || fail "5: under b=AS:150 the peer sent $frames frames in 5 s"
echo "ok: 5 --max-bitrate holds on the wire ($rate of 300, peer $peer of 150)"

# 6. A data-channel-only call: lines typed at start-up all arrive, the call ends cleanly at -t.
rm -f o a; mkfifo o a
(printf 'one\ntwo\nthree\n' | "$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a --data chat \
  --no-audio --no-video -t 6 --events off.jsonl >off.out 2>off.err; echo $? >off.rc) &
PIDS+=($!)
(printf 'uno\ndos\ntres\n' | "$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a --data chat \
  --no-audio --no-video -t 6 --events ans.jsonl >ans.out 2>ans.err; echo $? >ans.rc) &
PIDS+=($!)
for i in $(seq 200); do [[ -s off.rc && -s ans.rc ]] && break; sleep 0.1; done
[[ $(cat off.rc 2>/dev/null) == 0 && $(cat ans.rc 2>/dev/null) == 0 ]] || { show_logs; fail "6: exits $(cat off.rc ans.rc 2>/dev/null | tr '\n' /)"; }
[[ $(cat ans.out) == $'one\ntwo\nthree' ]] || fail "6: the answerer received '$(tr '\n' ' ' <ans.out)'"
[[ $(cat off.out) == $'uno\ndos\ntres' ]] || fail "6: the offerer received '$(tr '\n' ' ' <off.out)'"
jq -e -s '[.[] | select(.type=="ice-connection-state" and .state=="connected")] | length == 1' off.jsonl >/dev/null ||
  fail "6: no ice-connection-state connected event"
echo "ok: 6 data-only call: 3 of 3 lines each way, exit 0"

# 7. --media-timeout against a peer that sends nothing (it only receives): 6, after about 3 s.
CALL_DEADLINE=20 call_pair "--media-timeout 3 -t 8" "-t 8 --recvonly"
[[ $RC_OFF == 6 ]] || { show_logs; fail "7: exit $RC_OFF, expected 6"; }
(( $(echo "$T_OFF > 2.5 && $T_OFF < 5" | bc) )) || fail "7: fired after ${T_OFF}s, not about 3"
grep -q "no media received within 3 s" off.err || fail "7: message: $(tail -1 off.err)"
echo "ok: 7 --media-timeout 3 exits 6 after ${T_OFF}s"

# 8. Directions: what the user asked for wins.
CALL_DEADLINE=20 call_pair "-t 4" "-t 4 --no-audio"
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; fail "8: exits $RC_OFF/$RC_ANS"; }
[[ $(ev ans.jsonl summary audioFramesDecoded) == 0 && $(ev off.jsonl summary audioFramesDecoded) == 0 ]] ||
  fail "8: --no-audio still carried audio"
(( $(ev ans.jsonl summary videoFramesDecoded) > 50 )) || fail "8: --no-audio lost the video too"
# --no-video on the answerer, with video first in the offer: audio still flows both ways.
CALL_DEADLINE=20 call_pair "-t 4" "-t 4 --no-video"
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; fail "8: --no-video exits $RC_OFF/$RC_ANS"; }
[[ $(ev off.jsonl summary videoFramesDecoded) == 0 && $(ev ans.jsonl summary videoFramesDecoded) == 0 ]] ||
  fail "8: --no-video still carried video"
(( $(ev off.jsonl summary audioFramesDecoded) > 100 && $(ev ans.jsonl summary audioFramesDecoded) > 100 )) ||
  fail "8: --no-video lost the audio: $(ev off.jsonl summary audioFramesDecoded)/$(ev ans.jsonl summary audioFramesDecoded)"
CALL_DEADLINE=20 call_pair "-t 4 --sendonly" "-t 4"
[[ $(ev off.jsonl summary videoFramesDecoded) == 0 && $(ev off.jsonl summary audioFramesDecoded) == 0 ]] ||
  fail "8: the --sendonly side received media"
(( $(ev ans.jsonl summary videoFramesDecoded) > 50 )) || fail "8: --sendonly sent nothing"
for dir in --sendonly --recvonly; do
  CALL_DEADLINE=20 call_pair "-t 4 $dir" "-t 4 $dir"
  [[ $RC_OFF == 5 && $RC_ANS == 5 ]] || { show_logs; fail "8: $dir on both sides: exits $RC_OFF/$RC_ANS, expected 5"; }
  grep -q "nothing to carry" ans.err || fail "8: $dir on both: message: $(tail -1 ans.err)"
done
echo "ok: 8 --no-audio, --no-video, --sendonly hold; nothing to carry exits 5"

# 9. H.264 with B-frames through the call into .mp4: the tracks last as long as each other.
CALL_DEADLINE=20 call_pair "--send x.mp4 --video-codec h264" "-t 10 -o bframes.mp4 --video-codec h264"
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; fail "9: exits $RC_OFF/$RC_ANS"; }
v=$(stream_secs bframes.mp4 v:0); a=$(stream_secs bframes.mp4 a:0)
echo "9: video ${v}s, audio ${a}s"
(( $(echo "$v > 3.5 && ($v - $a) < 0.6 && ($a - $v) < 0.6" | bc) )) || fail "9: video ${v}s against audio ${a}s"
echo "ok: 9 H.264 with B-frames into .mp4: video ${v}s, audio ${a}s"

# 10. Memory does not grow with the call: stats every 0.1 s leaked 20 KB each (200 KB/s).
# (Not under AddressSanitizer, whose quarantine holds freed memory on purpose: KMS_SANITIZED=1.)
if [[ -n ${KMS_SANITIZED:-} ]]; then echo "skip: 10 (RSS means nothing under a sanitizer)"; else
rm -f o a; mkfifo o a
bg moff sh -c "exec '$KMS_CALL' offer --bind 127.0.0.1 --sdp-out o --sdp-in a -t 24 --stats-interval 0.1 -q </dev/null >/dev/null"
bg mans sh -c "exec '$KMS_CALL' answer --bind 127.0.0.1 --sdp-in o --sdp-out a -t 24 -q </dev/null >/dev/null"
rss() { awk '/VmRSS/ { print $2 }' "/proc/$PID_moff/status"; }
sleep 8; r1=$(rss); sleep 14; r2=$(rss)
wait_for "$PID_moff" 10; wait_for "$PID_mans" 10
echo "10: RSS $r1 KB at 8 s, $r2 KB at 22 s (140 stats requests)"
(( r2 - r1 < 1200 )) || fail "10: RSS grew by $((r2 - r1)) KB in 14 s"
echo "ok: 10 RSS grew $((r2 - r1)) KB over 140 stats requests"
fi

# 11. Output and input refusals come before the call, with their codes and the path.
for args in "-o /proc/x.webm" "-o /nonexistent/dir/x.webm" "--video-codec vp9 -o out.mp4"; do
  timeout -s KILL 10 "$KMS_CALL" offer --bind 127.0.0.1 $args </dev/null >o11.out 2>o11.err && RC=0 || RC=$?
  expect_rc 7 "11: $args"
  [[ ! -s o11.out ]] || fail "11: $args: an offer went out"
  grep -q -- "${args##* }" o11.err || fail "11: $args: the message does not name the path: $(cat o11.err)"
done
head -c 5000 /dev/urandom >noise.webm
for args in "--send /nonexistent.webm" "--send noise.webm" "--send /etc/passwd"; do
  timeout -s KILL 10 "$KMS_CALL" offer --bind 127.0.0.1 $args </dev/null >o11.out 2>o11.err && RC=0 || RC=$?
  expect_rc 3 "11: $args"
  [[ ! -s o11.out ]] || fail "11: $args: an offer went out"
done
echo "ok: 11 output failures exit 7, unusable --send files 3, before any offer"

# 13. --events - beside the SDP on stdout is refused.
timeout 10 "$KMS_CALL" offer --events - </dev/null >/dev/null 2>e13 && RC=0 || RC=$?
expect_rc 2 "13: --events - with the SDP on stdout"
grep -q "share stdout" e13 || fail "13: message: $(cat e13)"
timeout 10 "$KMS_CALL" answer --send - --data chat --sdp-in /dev/null </dev/null >/dev/null 2>e13 && RC=0 || RC=$?
expect_rc 2 "13: --send - with --data"
grep -q "both read stdin" e13 || fail "13: message: $(cat e13)"
echo "ok: 13 --events - with SDP on stdout, and --send - with --data, exit 2"

# 14. Range errors say what is wanted.
for args in "--ice-timeout 0" "--duration -1" "-t abc" "--sdp-timeout 0" "-t 5000000"; do
  timeout 10 "$KMS_CALL" offer $args </dev/null >/dev/null 2>e14 && RC=0 || RC=$?
  expect_rc 2 "14: $args"
  grep -q "number of seconds" e14 || fail "14: $args: $(head -1 e14)"
  ! grep -q "1797693" e14 || fail "14: $args prints the largest double"
done
echo "ok: 14 range errors name seconds"

# 17 (kms-call's side): no message shows a TURN password, even when CLI11 quotes the arguments
# after a mistyped option, or the URI lacks its scheme.
for args in "--turn-pasword TopSecret99" "--turn-password TopSecret99 --frob" \
            "--turn turn:alice:TopSecret99@127.0.0.1?transport=bogus" "--turn alice:TopSecret99@127.0.0.1" \
            "--turn turns:alice:TopSecret99@127.0.0.1" "--stun turn:alice:TopSecret99@127.0.0.1"; do
  timeout 10 "$KMS_CALL" offer --bind 127.0.0.1 $args --json </dev/null >s17.out 2>s17.err && RC=0 || RC=$?
  [[ $RC == 2 ]] || fail "17: $args: exit $RC, expected 2"
  ! grep -q TopSecret99 s17.out s17.err || fail "17: $args printed the password: $(cat s17.err)"
done
echo "ok: 17 no TURN password in any message"

# 15. --stats-interval 0 keeps the selected pair; ICE states come once each, connected first.
CALL_DEADLINE=20 call_pair "-t 3 --stats-interval 0" "-t 3"
[[ $RC_OFF == 0 ]] || { show_logs; fail "15: exit $RC_OFF"; }
jq -e -s '[.[] | select(.type=="selected-candidate-pair")] | length == 1' off.jsonl >/dev/null ||
  fail "15: no selected-candidate-pair with --stats-interval 0"
states=$(jq -r -s '[.[] | select(.type=="ice-connection-state") | .state] | join(",")' off.jsonl)
[[ $states == "checking,connected,completed" || $states == "checking,connected" ]] || fail "15: ICE states $states"
echo "ok: 15 selected pair with --stats-interval 0; ICE states $states"
pass "limits"
