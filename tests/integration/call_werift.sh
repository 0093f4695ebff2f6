#!/usr/bin/env bash
# werift, an independent TypeScript WebRTC stack, and kms-call in one private namespace, on
# 127.0.0.1: kms-call as answerer and as offerer (json SDP). werift sends VP8 (gst-launch-1.0
# encodes it) and kms-call must decode it; kms-call sends its test pattern and tone and werift must
# deliver them to its tracks. werift routes received RTP by the SSRCs of kms-call's a=ssrc lines
# (or a=rid), not by the MID header extension: without them, packets arrive and are dropped. The
# MID header extension must be negotiated on every m-line and carry that m-line's mid. With one
# video track each way, and with two (kms-call gets one --send per track).
#   KMS_WERIFT_VIDEOS="1"       only one video track each way; default "1 2"
#   KMS_WERIFT_REQUIRE_MID=0    media flowing is enough, without the MID header extension
#   KMS_WERIFT_SECONDS=N        length of each call (default 5)
. "$(dirname "$0")/../lib/kms-test.sh"

[[ -d $TOP/tests/browser/node_modules/werift ]] || fail "werift is not installed: run scripts/setup"
command -v gst-launch-1.0 >/dev/null || fail "gst-launch-1.0 is missing: run scripts/setup"

videos=${KMS_WERIFT_VIDEOS:-1 2}
secs=${KMS_WERIFT_SECONDS:-5}
mid=()
[[ ${KMS_WERIFT_REQUIRE_MID:-1} == 0 ]] || mid=(--require-mid)
patterns=(smpte ball snow pinwheel)
failed=()
for k in $videos; do
  # One kms-call video source per werift video track (the default test:av for one).
  sends='[]'
  if ((k > 1)); then
    sends=$(for ((i = 0; i < k; i++)); do
      if ((i == 0)); then printf '%s\n' --send test:video; else printf '%s\n' --send "test:video?pattern=${patterns[i]}"; fi
    done | jq -R . | jq -sc .)
  fi
  for role in answer offer; do
    what="kms-call as $role with werift, $k video track(s) each way"
    set +e
    out=$(timeout $((secs + 70)) node "$TOP/tests/browser/werift_peer.mjs" --kms "$KMS_CALL" --role "$role" \
      --dir "$WORK" --seconds "$secs" --videos "$k" --kms-args "$sends" "${mid[@]}")
    rc=$?
    set -e
    if [[ $rc == 0 ]]; then
      jq -c '{role, videos, kmsExit, mlines: [.mlines[] | {mid, kind, kms: .kmsDirection, werift: .weriftDirection,
        received: .received.packets, midsSeen, kmsSsrc: .kmsSsrcs}], kmsDecoded: .kms.inbound}' <<<"$out"
      echo "ok: $what"
    else
      echo "$out"
      echo "FAIL ($rc): $what:" >&2
      jq -r '.problems[]? | "  " + .' <<<"$out" >&2 || true
      failed+=("$what")
    fi
  done
done
((${#failed[@]} == 0)) || fail "${#failed[@]} werift call(s): $(printf '%s; ' "${failed[@]}")"
pass "werift calls"
