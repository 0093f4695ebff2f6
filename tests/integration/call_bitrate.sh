#!/usr/bin/env bash
# Bandwidth: --max-bitrate caps our encoder and, through b=AS/b=TIAS in our SDP, the peer's;
# --start-bitrate is where adaptation starts, and it never leaves [--min-bitrate, --max-bitrate].
. "$(dirname "$0")/../lib/kms-test.sh"

call_pair "-t 5 --max-bitrate 600 --start-bitrate 200 --min-bitrate 150 --stats-interval 0.25" \
          "-t 5 --stats-interval 0.25"
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; fail "exits $RC_OFF/$RC_ANS"; }
targets=$(jq -s -c '[.[] | select(.type=="outbound-rtp" and .kind=="video") | .targetBitrate]' off.jsonl)
echo "offerer video targets: $targets"
# The first report may already carry the first step up (200 -> 216).
jq -e '.[0] <= 216000' <<<"$targets" >/dev/null || fail "did not start at 200 kbit/s"
jq -e 'all(. >= 150000 and . <= 600000)' <<<"$targets" >/dev/null || fail "left [150, 600] kbit/s"
jq -e 'max > 200000' <<<"$targets" >/dev/null || fail "never grew on a loss-free link"
peer=$(jq -s -c '[.[] | select(.type=="outbound-rtp" and .kind=="video") | .targetBitrate]' ans.jsonl)
echo "answerer video targets: $peer"
jq -e 'length > 0 and all(. <= 600000)' <<<"$peer" >/dev/null || fail "the answerer ignored our b=AS:600"

# The cap is in our SDP, on the video m-line only: b=AS in kbit/s, b=TIAS in bit/s.
"$KMS_CALL" offer --bind 127.0.0.1 --max-bitrate 600 --sdp-timeout 1 -q </dev/null >capped.sdp 2>/dev/null || true
tr -d '\r' <capped.sdp | awk '/^m=/ { m = $1 } /^b=AS:/ { print m, $0 } /^b=TIAS:/ { print m, $0 }' >bw.txt
[[ $(cat bw.txt) == $'m=video b=AS:600\nm=video b=TIAS:600000' ]] || fail "bandwidth lines in our offer: $(tr '\n' ' ' <bw.txt)"
echo "ok: b=AS:600 and b=TIAS:600000 on the video m-line"

# Loss: 40 % of what goes to the answerer's ports is dropped. The peer's receiver reports say so,
# the offerer's target comes down towards --min-bitrate and never below it, and the rate on the
# wire at the receiver follows.
# The loss starts once ICE has chosen its UDP pair (lost checks early on would make it pick
# ICE-TCP, which no UDP rule touches).
drop="OUTPUT -p udp --dport 41000:41010 -m statistic --mode random --probability 0.4 -j DROP"
(sleep 2; iptables -A $drop) &
# 12 s of loss: the controller steps down once per receiver report (one every second or so),
# and 800 to 200 kbit/s takes seven steps.
CALL_DEADLINE=30 call_pair "-t 14 --max-bitrate 800 --start-bitrate 800 --min-bitrate 200 --stats-interval 0.5" \
  "-t 14 --port-range 41000-41010 -o lossy.mkv"
dropped=$(iptables -L OUTPUT -v -n -x | awk '/statistic/ { print $1 }')
iptables -D $drop
jq -e -s '[.[] | select(.type=="selected-candidate-pair")][0].local.protocol == "udp"' ans.jsonl >/dev/null ||
  fail "the lossy call did not run over UDP"
(( dropped > 100 )) || fail "only $dropped packets were dropped"
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; fail "lossy call: exits $RC_OFF/$RC_ANS"; }
# The answerer asks for retransmissions all through the loss, and rtpsession 1.22 then sends
# no report block of its own: kms adds them (reception_stats.hpp), at least one a second.
reports=$(jq -s '[.[] | select(.type=="remote-inbound-rtp" and .kind=="video") | .reportsReceived] | max // 0' off.jsonl)
echo "receiver reports about the offerer's video: $reports"
(( reports >= 8 )) || fail "only $reports receiver reports reached the offerer in a 14 s lossy call"
targets=$(jq -s -c '[.[] | select(.type=="bitrate") | .targetBitrate]' off.jsonl)
echo "targets under 40 % loss: $targets"
jq -e 'length > 0 and min == 200000' <<<"$targets" >/dev/null ||
  fail "under 40 % loss the target did not come down to --min-bitrate 200, or went below it"
late=$(video_kbps lossy.mkv 11 13.5)
echo "received at the end: $late kbit/s"
(( late < 350 )) || fail "the receiver still got $late kbit/s after the controller backed off"
echo "ok: loss brings the rate down to the floor and not below"
pass "bitrate limits"
