#!/usr/bin/env bash
# Two kms-call in a private namespace joined by fifos send audio and video both ways; each side
# decodes frames, and the offerer's recording is read back by ffprobe.
. "$(dirname "$0")/../lib/kms-test.sh"

call_pair "-t 4 -o rec.webm --stats-interval 0.5" "-t 4 --send test:av?pattern=ball --stats-interval 0.5"
show_logs
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || fail "exit codes offer=$RC_OFF answer=$RC_ANS"

for side in off ans; do
  v=$(ev $side.jsonl inbound-rtp framesDecoded video)
  a=$(ev $side.jsonl inbound-rtp audioFramesDecoded audio)
  s=$(ev $side.jsonl outbound-rtp framesSent video)
  echo "$side: video frames decoded $v, audio frames decoded $a, video frames sent $s"
  (( v >= 30 )) || fail "$side decoded only $v video frames"
  (( a >= 50 )) || fail "$side decoded only $a audio frames"
  (( s >= 30 )) || fail "$side sent only $s video frames"
  [[ $(jq -s '[.[] | select(.type=="fingerprint")][0].verified' $side.jsonl) == true ]] || fail "$side: fingerprint not verified"
  [[ $(jq -s '[.[] | select(.type=="selected-candidate-pair")][0].local.address' $side.jsonl) == '"127.0.0.1"' ]] ||
    fail "$side: no selected pair on loopback"
  jq -e -s '[.[] | select(.type=="timing")][0].sinceProcessStart.firstFrame > 0' $side.jsonl >/dev/null ||
    fail "$side: timing has no first frame"
  jq -e -s '[.[] | select(.type=="local-candidate")] | length > 0' $side.jsonl >/dev/null || fail "$side: no candidate events"
  # W3C's protocol names, in every event that has one: "udp" or "tcp".
  jq -e -s '[.[] | (select(.type=="local-candidate") | .protocol), (select(.type=="selected-candidate-pair") | .local.protocol, .remote.protocol)] |
    length > 2 and all(. == "udp" or . == "tcp")' $side.jsonl >/dev/null ||
    fail "$side: candidate protocols $(jq -c -s '[.[] | .protocol? // .local.protocol? // empty] | unique' $side.jsonl)"
  jq -e -s '[.[] | select(.type=="media-flow" and .direction=="in" and .state=="flowing")] | length == 2' \
    $side.jsonl >/dev/null || fail "$side: media-flow in events missing"
  # Media flows out once the peer can decrypt it (the DTLS check), never before: two such
  # events, each after the verified fingerprint.
  jq -e -s 'to_entries | ([.[] | select(.value.type=="fingerprint" and .value.verified)][0].key) as $v |
    [.[] | select(.value.type=="media-flow" and .value.direction=="out" and .value.state=="flowing") | .key] |
    $v != null and length == 2 and min > $v' $side.jsonl >/dev/null ||
    fail "$side: media-flow out: $(jq -c 'select(.type=="media-flow" or .type=="fingerprint" or .type=="dtls-state")' $side.jsonl | tr '\n' ' ')"
  # Nothing came twice on loopback: no stream reads below 0 (rtpsession's count read -1).
  jq -e -s '[.[] | select(.type=="inbound-rtp") | .packetsLost] | length > 0 and min >= 0' $side.jsonl >/dev/null ||
    fail "$side: packetsLost $(jq -c -s '[.[] | select(.type=="inbound-rtp") | .packetsLost] | unique' $side.jsonl)"
done

# The recording holds what arrived, untouched: VP8 and Opus, about as long as the media flowed.
probe=$(ffprobe -v error -count_frames -show_entries stream=codec_name,nb_read_frames -show_entries format=duration -of json rec.webm)
echo "$probe" | jq -c .
[[ $(echo "$probe" | jq -r '[.streams[].codec_name] | sort | join(",")') == "opus,vp8" ]] || fail "recording codecs"
echo "$probe" | jq -e '(.format.duration | tonumber) > 2 and (.format.duration | tonumber) < 5' >/dev/null ||
  fail "recording duration"
echo "$probe" | jq -e '[.streams[] | select(.codec_name=="vp8") | .nb_read_frames | tonumber][0] > 30' >/dev/null ||
  fail "recording has too few video frames"
# Opus at 20 ms a frame: about 3 s of call is well over 100 frames of audio.
echo "$probe" | jq -e '[.streams[] | select(.codec_name=="opus") | .nb_read_frames | tonumber][0] > 100' >/dev/null ||
  fail "recording has too few audio frames: $(echo "$probe" | jq -c '[.streams[] | select(.codec_name=="opus") | .nb_read_frames]')"
# Times only go forward in each track: lip sync, once the first sender report came, stepped
# the audio back by up to 400 ms at once.
for sel in a:0 v:0; do
  # (A packet with side data prints a trailing comma and an empty line: numbers only.)
  back=$(ffprobe -v error -select_streams "$sel" -show_entries packet=pts_time -of csv=p=0 rec.webm |
    grep -E '^[0-9]' | tr -d , |
    awk 'NR > 1 && $1 + 0 < p { n++; if (!w) w = p " then " $1 } { p = $1 + 0 } END { print n + 0, w }')
  [[ $back == 0* ]] || fail "recording: its $sel steps back in time (times, first): $back"
done
pass "audio and video both ways, recorded, their times only going forward"
