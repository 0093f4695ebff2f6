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
pass "bitrate limits"
