#!/usr/bin/env bash
# Every video codec with every audio codec negotiates and decodes; the answer honours the offer's
# order, and already-negotiated codec names show in the track events.
. "$(dirname "$0")/../lib/kms-test.sh"

for vc in vp8 vp9 h264; do
  for ac in opus pcmu pcma g722; do
    call_pair "-t 2.5 --video-codec $vc --audio-codec $ac --stats-interval 0.5" "-t 2.5 --stats-interval 0.5"
    [[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; fail "$vc+$ac: exit codes $RC_OFF/$RC_ANS"; }
    for side in off ans; do
      got=$(jq -r -s '[.[] | select(.type=="track" and .direction=="in") | .codec] | sort | join("+")' $side.jsonl)
      want=$(printf '%s\n' $vc $ac | sort | paste -sd+)
      [[ $got == "$want" ]] || fail "$vc+$ac: $side received $got"
      v=$(ev $side.jsonl inbound-rtp framesDecoded video)
      a=$(ev $side.jsonl inbound-rtp audioFramesDecoded audio)
      (( v > 10 && a > 10 )) || fail "$vc+$ac: $side decoded video $v audio $a"
    done
    echo "ok: $vc + $ac (answerer decoded video $v, audio $a)"
  done
done

# The answer takes the offer's first codec that it accepts.
call_pair "-t 2 --video-codec vp9,vp8 --no-audio" "-t 2 --video-codec vp8,vp9 --no-audio"
[[ $(jq -r -s '[.[] | select(.type=="track" and .direction=="out")][0].codec' ans.jsonl) == vp9 ]] ||
  fail "the answer did not honour the offer's order"
pass "12 codec pairs and the offer's order"
