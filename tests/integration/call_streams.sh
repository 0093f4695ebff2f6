#!/usr/bin/env bash
# What lets an SFU or a browser tell kms-call's streams apart (RFC 8843 §9.2), and several
# streams of one kind: every SDP kms-call writes carries a=msid, a=ssrc ... cname: and the MID and
# transport-wide-cc extensions on each m-line it sends on; the RTP on the wire (captured with
# tcpdump: SRTP leaves RTP headers in the clear) carries each m-line's MID and one transport-wide
# sequence; two --send video sources give two video m-lines, decoded and recorded as two tracks;
# an answer names only the extensions the offer had, with the offer's ids; a negotiated track
# that never arrives is reported, and fails the call with --media-timeout; with loss on the path,
# the NACKs of the receiver are answered on the sender's RTX SSRC (a=ssrc-group:FID).
. "$(dirname "$0")/../lib/kms-test.sh"

command -v tcpdump >/dev/null || fail "tcpdump is not installed: run scripts/setup"

# sdp_streams FILE: per audio/video m-line "mid direction msid-lines ssrc-cname-lines mid-extmap
# twcc-extmap", one line each.
sdp_streams() {
  awk '/^m=/ { if (m) print m, d, msid, ssrc, mx, tx; m = ""; d = "-"; msid = ssrc = mx = tx = 0 }
       /^m=(audio|video)/ { m = "?" }
       m && /^a=mid:/ { sub(/\r$/, ""); m = substr($0, 7) }
       m && /^a=(sendrecv|sendonly|recvonly|inactive)/ { sub(/\r$/, ""); d = substr($0, 3) }
       m && /^a=msid:/ { msid++ }
       m && /^a=ssrc:[0-9]+ cname:/ { ssrc++ }
       m && /^a=extmap:[0-9]+ urn:ietf:params:rtp-hdrext:sdes:mid/ { mx++ }
       m && /^a=extmap:[0-9]+ http:\/\/www.ietf.org\/id\/draft-holmer-rmcat-transport-wide-cc/ { tx++ }
       END { if (m) print m, d, msid, ssrc, mx, tx }' "$1"
}
# check_sdp FILE WHO: every m-line we send on says who we are and what we put in the RTP.
check_sdp() {
  local n=0 mid dir msid ssrc mx tx
  while read -r mid dir msid ssrc mx tx; do
    [[ $dir == sendrecv || $dir == sendonly ]] || continue
    n=$((n + 1))
    (( msid == 1 )) || fail "$2: m-line $mid has $msid a=msid lines"
    (( ssrc >= 1 )) || fail "$2: m-line $mid has no a=ssrc ... cname: line"
    (( mx == 1 && tx == 1 )) || fail "$2: m-line $mid has $mx MID and $tx transport-wide-cc a=extmap lines"
  done < <(sdp_streams "$1")
  (( n > 0 )) || fail "$2: no m-line we send on"
  echo "   $2: $n sending m-lines with a=msid, a=ssrc cname and both a=extmap lines"
}

# until_file SECS FILE: waits for FILE to have content.
until_file() {
  local i=0
  until [[ -s $2 ]]; do sleep 0.1; i=$((i + 1)); (( i <= $1 * 10 )) || return 1; done
}
# Like call_pair, but each SDP goes through a file that stays for the checks (off.sdp, ans.sdp);
# the answerer reads the offer through OFFER_FILTER (default cat).
sdp_pair() {
  rm -f a off.sdp ans.sdp off.jsonl ans.jsonl; mkfifo a
  "$KMS_CALL" offer --bind 127.0.0.1 --sdp-out off.sdp --sdp-in a --events off.jsonl $1 2>off.err >/dev/null </dev/null &
  PIDS+=($!); local off=$!
  until_file 10 off.sdp || fail "no offer"
  sleep 0.2
  ${OFFER_FILTER:-cat} <off.sdp >off-seen.sdp
  "$KMS_CALL" answer --bind 127.0.0.1 --sdp-in off-seen.sdp --sdp-out ans.sdp --events ans.jsonl $2 2>ans.err >/dev/null </dev/null &
  PIDS+=($!); local ans=$!
  until_file 10 ans.sdp || fail "no answer"
  sleep 0.2
  cat ans.sdp >a
  set +e; wait "$off"; RC_OFF=$?; wait "$ans"; RC_ANS=$?; set -e
}

# 1. Two video sources against one, recorded: SDP, wire and file.
tcpdump -i lo -n -U -w cap.pcap udp 2>/dev/null &
PIDS+=($!); cap=$!
sleep 0.5
sdp_pair "-t 4 --send test:video --send test:video?pattern=ball" "-t 4 -o got.mkv"
sleep 0.5; kill "$cap"; wait "$cap" 2>/dev/null || true
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; fail "two video sources: exits $RC_OFF/$RC_ANS"; }
check_sdp off.sdp offer
check_sdp ans.sdp answer
# Each side's session is its own (RFC 3264 §6): the answer's o= session id is not the offer's.
o_off=$(tr -d '\r' <off.sdp | awk '/^o=/ { print $2; exit }'); o_ans=$(tr -d '\r' <ans.sdp | awk '/^o=/ { print $2; exit }')
[[ -n $o_off && -n $o_ans && $o_off != "$o_ans" ]] || fail "o= session ids: offer '$o_off', answer '$o_ans'"
[[ $(sdp_streams off.sdp | awk '$1 ~ /^video/' | wc -l) == 2 ]] || fail "two --send video sources did not give two video m-lines"

# Per stream at the answerer: both of the offerer's video streams decoded, under their own MIDs.
jq -e -s '[.[] | select(.type=="summary")][0].tracks | map(select(.kind=="video" and .framesDecoded > 30)) | length == 2' \
  ans.jsonl >/dev/null || fail "the answerer did not decode both video streams: $(jq -c -s '[.[] | select(.type=="summary")][0].tracks' ans.jsonl)"
jq -e -s '[.[] | select(.type=="inbound-rtp" and .kind=="video") | .mid] | unique | length == 2' ans.jsonl >/dev/null ||
  fail "the answerer's inbound-rtp stats do not name both video MIDs"
jq -e -s '[.[] | select(.type=="track" and .direction=="in")] | length == 2 and all(.filedBy == "mid")' ans.jsonl >/dev/null ||
  fail "the answerer did not file every stream by its MID: $(jq -c -s '[.[] | select(.type=="track" and .direction=="in")]' ans.jsonl)"
nv=$(ffprobe -v error -select_streams v -show_entries stream=index -of csv=p=0 got.mkv | wc -l)
(( nv == 2 )) || fail "got.mkv holds $nv video tracks, not 2"
for v in 0 1; do
  f=$(ffprobe -v error -count_frames -select_streams v:$v -show_entries stream=nb_read_frames -of csv=p=0 got.mkv)
  (( f > 30 )) || fail "video track $v of got.mkv has $f frames"
done
echo "   got.mkv: 2 video tracks that ffprobe decodes"

# The wire: each SSRC a=ssrc announced carries its m-line's MID, and every packet of ours one
# transport-wide sequence number.
rtp=$(node "$TOP/tests/lib/rtp_ext.mjs" cap.pcap 1 2)
for side in off ans; do
  while read -r ssrc mid; do
    got=$(jq -r --arg s "$ssrc" '.[$s].mids // {} | keys | join(",")' <<<"$rtp")
    packets=$(jq -r --arg s "$ssrc" '.[$s].packets // 0' <<<"$rtp")
    twcc=$(jq -r --arg s "$ssrc" '.[$s].twcc // 0' <<<"$rtp")
    (( packets > 0 )) || continue  # an RTX SSRC: nothing was lost, nothing resent
    [[ $got == "$mid" ]] || fail "$side: SSRC $ssrc of m-line $mid carried MID '$got' on the wire"
    (( twcc == packets )) || fail "$side: SSRC $ssrc: $twcc of $packets packets carry a transport-wide sequence"
    echo "   $side SSRC $ssrc: $packets packets, MID $mid and a transport-wide sequence in each"
  done < <(awk 'function flush() { for (i = 1; i <= n; i++) print ssrc[i], mid; n = 0; mid = "" }
                /^m=/ { flush() }
                /^a=mid:/ { sub(/\r$/, ""); mid = substr($0, 7) }
                /^a=ssrc:[0-9]+ cname:/ { split($1, f, ":"); ssrc[++n] = f[2] }
                END { flush() }' $side.sdp)
done
pass "two video sources: SDP, MID and transport-wide-cc on the wire, two decoded and recorded tracks"

# 1b. A peer that announces no SSRCs (no a=ssrc lines, the MID extension only): each received
# stream is filed by the MID its packets carry, so every SSRC lands on its own m-line.
OFFER_FILTER="sed /^a=ssrc/d" sdp_pair "-t 3 --send test:video --send test:video?pattern=ball" "-t 3"
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; fail "MID only: exits $RC_OFF/$RC_ANS"; }
! grep -q '^a=ssrc' off-seen.sdp || fail "the filter left a=ssrc lines"
want=$(tr -d '\r' <off.sdp | awk '/^m=/ { n++ } /^a=mid:/ { mid[n] = substr($0, 7) } /^a=ssrc:[0-9]+ cname:/ { split($1, f, ":"); s[f[2]] = n }
  END { for (x in s) print x, mid[s[x]] }' | sort)
got=$(jq -r 'select(.type=="inbound-rtp" and .kind=="video" and .mid != null) | "\(.ssrc) \(.mid)"' ans.jsonl | sort -u)
[[ -n $got ]] && [[ $(comm -13 <(echo "$want") <(echo "$got")) == "" ]] ||
  fail "MID only: the answerer filed SSRCs as [$got]; the offerer sent [$want]"
(( $(wc -l <<<"$got") == 2 )) || fail "MID only: the answerer saw $(wc -l <<<"$got") video streams: $got"
# Not by chance: the payload type alone would have filed them too, in arrival order.
jq -e -s '[.[] | select(.type=="track" and .direction=="in" and .kind=="video")] | length == 2 and all(.filedBy == "mid")' \
  ans.jsonl >/dev/null || fail "MID only: streams not filed by their MID"
pass "without a=ssrc lines, streams are filed by the MID they carry: $(tr '\n' ' ' <<<"$got")"

# 2. An answer names an extension only when the offer had it, with the offer's id.
# -t 2: the answer waits for the DTLS certificate, which alone took up to 0.5 s here.
answer_of() { rm -f x.sdp; "$KMS_CALL" answer --bind 127.0.0.1 --sdp-in "$1" --sdp-out x.sdp -t 2 >/dev/null 2>&1 || true; }
answer_of "$DATA/sdp/chrome-style-offer.sdp"
[[ -s x.sdp ]] || fail "no answer to the browser-style offer"
! grep -q '^a=extmap' x.sdp || fail "the answer has extensions the offer did not: $(grep '^a=extmap' x.sdp)"
check_msid_only=$(sdp_streams x.sdp | awk '$2 ~ /send/ && ($3 != 1 || $4 < 1)')
[[ -z $check_msid_only ]] || fail "answer m-lines we send on without a=msid/a=ssrc: $check_msid_only"
awk '{ print } /^m=(audio|video)/ { print "a=extmap:7 urn:ietf:params:rtp-hdrext:sdes:mid" }' \
  "$DATA/sdp/chrome-style-offer.sdp" >with_mid.sdp
answer_of with_mid.sdp
[[ -s x.sdp ]] || fail "no answer to the offer with the MID extension"
ids=$(grep '^a=extmap' x.sdp | tr -d '\r' | sort -u)
[[ $ids == "a=extmap:7 urn:ietf:params:rtp-hdrext:sdes:mid" ]] || fail "the answer's extensions: $ids"
pass "an answer names only the offer's extensions, with the offer's ids"

# 3. A track negotiated but never sent: stdin is not probed, so the answerer agrees to send audio
# it does not have. Without --media-timeout: a warning and a media-flow event; with it: exit 6.
gst-launch-1.0 -q -e videotestsrc num-buffers=200 ! video/x-raw,width=320,height=240,framerate=30/1 \
  ! vp8enc deadline=1 ! matroskamux streamable=true ! filesink location=video-only.mkv
for timeout in 0 3; do
  rm -f a off.sdp ans.sdp; mkfifo a
  args="-t 6"; (( timeout )) && args="--media-timeout $timeout -t 6"
  "$KMS_CALL" offer --bind 127.0.0.1 --sdp-out off.sdp --sdp-in a --events off.jsonl $args 2>off.err >/dev/null </dev/null &
  PIDS+=($!); off=$!
  until_file 10 off.sdp || fail "no offer"
  "$KMS_CALL" answer --bind 127.0.0.1 --sdp-in off.sdp --sdp-out ans.sdp --events ans.jsonl --send - -t 8 \
    2>ans.err >/dev/null <video-only.mkv &
  PIDS+=($!); ans=$!
  until_file 10 ans.sdp || fail "no answer"
  sleep 0.2; cat ans.sdp >a
  set +e; wait "$off"; RC=$?; set -e
  kill "$ans" 2>/dev/null || true
  jq -e -s 'any(.[]; .type=="media-flow" and .kind=="audio" and .state=="never-arrived")' off.jsonl >/dev/null ||
    fail "no media-flow never-arrived event for the audio that never came (media-timeout $timeout)"
  jq -e -s 'any(.[]; .type=="summary" and .videoFramesDecoded > 30)' off.jsonl >/dev/null ||
    fail "the video that did come was not decoded (media-timeout $timeout)"
  if (( timeout )); then
    expect_rc 6 "--media-timeout 3 with a track that never came"
    grep -q 'never received: audio' off.err || fail "stderr does not name the track: $(tail -3 off.err)"
  else
    expect_rc 0 "a track that never came, without --media-timeout"
    grep -q 'never received: audio' off.err || fail "no warning on stderr: $(tail -3 off.err)"
  fi
  echo "   media-timeout $timeout: exit $RC; $(grep -m1 'never received' off.err)"
done
pass "a negotiated track that never arrives is reported, and fails --media-timeout"

# 4. RTX: 5 % of what goes to the answerer is dropped; its NACKs are answered on the offerer's
# RTX SSRC, the second of the video m-line's a=ssrc-group:FID, seen on the wire. (tcpdump sees
# what leaves after iptables' OUTPUT chain: a dropped packet is not in the capture.)
drop="OUTPUT -p udp --dport 41000:41010 -m statistic --mode random --probability 0.05 -j DROP"
tcpdump -i lo -n -U -w rtx.pcap udp 2>/dev/null &
PIDS+=($!); cap=$!
sleep 0.5
(sleep 1.5; iptables -A $drop) &
sdp_pair "-t 5 --no-audio" "-t 5 --no-audio --port-range 41000-41010"
iptables -D $drop 2>/dev/null || true
sleep 0.5; kill "$cap"; wait "$cap" 2>/dev/null || true
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; fail "lossy call: exits $RC_OFF/$RC_ANS"; }
rtx=$(tr -d '\r' <off.sdp | awk '/^a=ssrc-group:FID/ { print $3; exit }')
[[ -n $rtx ]] || fail "the offer has no a=ssrc-group:FID"
grep -q 'rtx/90000' ans.sdp || fail "the answer took no RTX"
resent=$(node "$TOP/tests/lib/rtp_ext.mjs" rtx.pcap 1 2 | jq --arg s "$rtx" '.[$s].packets // 0')
media=$(node "$TOP/tests/lib/rtp_ext.mjs" rtx.pcap 1 2 | jq --arg s "$(tr -d '\r' <off.sdp | awk '/^a=ssrc-group:FID/ { print $2; exit }')" '.[$s].packets // 0')
(( resent > 0 )) || fail "no retransmission on RTX SSRC $rtx while 5 % of $media video packets were dropped (the capture: $(tcpdump -r rtx.pcap -n 2>/dev/null | wc -l) UDP packets, by SSRC $(node "$TOP/tests/lib/rtp_ext.mjs" rtx.pcap 1 2 | jq -c 'map_values(.packets)'))"
echo "   $resent retransmissions on RTX SSRC $rtx for $media video packets sent"
# W3C counts them in their stream: the offerer's video outbound-rtp and the answerer's video
# inbound-rtp carry retransmitted packets, the answerer no more than crossed the wire, and the
# RTX SSRC has no inbound-rtp of its own.
sent=$(jq -s '[.[] | select(.type == "outbound-rtp" and .kind == "video" and .final)] | last | .retransmittedPacketsSent // 0' off.jsonl)
got=$(jq -s '[.[] | select(.type == "inbound-rtp" and .kind == "video" and .final)] | last | .retransmittedPacketsReceived // 0' ans.jsonl)
streams=$(jq -s '[.[] | select(.type == "inbound-rtp") | .ssrc] | unique | length' ans.jsonl)
(( sent > 0 && got > 0 && got <= resent && streams == 1 )) ||
  fail "retransmissions in the stats: sent $sent, received $got (on the wire $resent), inbound SSRCs $streams"
echo "   stats: $sent retransmissions sent, $got received, in the video stream's own entries"
pass "RTX: lost video packets are sent again on the RTX SSRC"

# 5. Loss that no retransmission repairs: the offerer's RTX packets (their RTP payload type,
# read from the offer, in the clear in the SRTP header) are dropped for the whole call, and
# everything else to the answerer for 1 s. The answerer records no broken frames and asks for
# a key frame (PLI) as soon as media returns, so its recording starts again with a key frame at
# once, not at the offerer's next periodic one (up to 2 s later); both sides count PLIs that
# came after the blackout began (there are some at the start too).
blackout="OUTPUT -p udp --dport 41000:41010 -j DROP"
rm -f off.sdp cut.log
(
  for i in $(seq 100); do grep -q 'rtx/90000' off.sdp 2>/dev/null && break; sleep 0.1; done
  pt=$(tr -d '\r' <off.sdp | awk -F'[: ]' '/^a=rtpmap:[0-9]+ rtx\/90000/ { print $2; exit }')
  # u32: from the IP header's length to the UDP header, then the second RTP byte's low 7 bits.
  iptables -A OUTPUT -p udp --dport 41000:41010 -m u32 --u32 "0>>22&0x3C@9>>24&0x7F=$pt" -j DROP &&
    echo "rtx $pt" >>cut.log
  sleep 3; echo "from $(date +%s%3N)" >>cut.log; iptables -A $blackout; sleep 1; iptables -D $blackout
) &
PIDS+=($!); cut=$!
sdp_pair "-t 7 --no-audio" "-t 7 --no-audio --port-range 41000-41010 -o blackout.mkv"
wait "$cut" 2>/dev/null || true
iptables -F OUTPUT  # this test's own network namespace: the blackout and the RTX drop
grep -q '^rtx [0-9]' cut.log || fail "blackout: the RTX drop was not set up: $(cat cut.log 2>/dev/null)"
from=$(awk '/^from/ { print $2 }' cut.log)
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; fail "blackout: exits $RC_OFF/$RC_ANS"; }
# The longest pause between recorded frames, and whether the frame after it is a key frame.
read -r gap key < <(ffprobe -v error -select_streams v:0 -show_entries packet=pts_time,flags -of csv=p=0 blackout.mkv |
  awk -F, 'NR > 1 && $1 - p > g { g = $1 - p; k = ($2 ~ /K/) } { p = $1 } END { printf "%.2f %d\n", g, k }')
echo "   the recording pauses ${gap} s; the frame after the pause is a key frame: $key"
within 0.8 "$gap" && within "$gap" 1.8 || fail "blackout: the recording's longest pause is $gap s, not 1 s plus a moment"
(( key == 1 )) || fail "blackout: the recording resumes with a frame that needs what was lost"
# PLIs counted after the blackout began: the final count against the last one before it.
plis() {  # plis FILE TYPE -> "before final"
  jq -r -s --arg t "$2" --argjson from "$from" '[.[] | select(.type == $t and .kind == "video")] |
    "\([.[] | select(.timestamp < $from and (.final | not))] | last | .pliCount // 0) \([.[] | select(.final)] | last | .pliCount // 0)"' "$1"
}
read -r asked0 asked < <(plis ans.jsonl inbound-rtp)
read -r heard0 heard < <(plis off.jsonl outbound-rtp)
(( asked > asked0 && heard > heard0 )) ||
  fail "blackout: PLIs after it began: the answerer sent $asked0 then $asked, the offerer heard $heard0 then $heard"
pass "after a 1 s blackout the recording resumes with a key frame after $gap s (PLIs sent $asked0 -> $asked, heard $heard0 -> $heard)"
