#!/usr/bin/env bash
# A recorded call between two kms-call on this machine, in a private network namespace so that
# nothing leaves loopback. Run as root (unshare). Usage: samples/loopback-call.sh [SECONDS]
set -euo pipefail
secs=${1:-10}
if [[ -z ${IN_NS:-} ]]; then IN_NS=1 exec unshare --net -- "$0" "$@"; fi
ip link set lo up
dir=$(mktemp -d); cd "$dir"
mkfifo offer answer
kms-call offer --bind 127.0.0.1 --sdp-out offer --sdp-in answer -t "$secs" -o call.webm --events offer.jsonl -q &
kms-call answer --bind 127.0.0.1 --sdp-in offer --sdp-out answer -t "$secs" --send 'test:av?pattern=ball' -q
wait
jq -c 'select(.type=="timing")' offer.jsonl
echo "recording: $dir/call.webm"
