#!/usr/bin/env bash
# A health check for cron: a 5-second loopback call must decode video both ways, or the script
# says why and exits non-zero (cron mails only then, since kms-call is quiet with -q).
#   */15 * * * * root /usr/local/share/kms/samples/cron-call-check.sh
set -euo pipefail
if [[ -z ${IN_NS:-} ]]; then IN_NS=1 exec unshare --net -- "$0" "$@"; fi
ip link set lo up
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT; cd "$dir"
mkfifo o a
kms-call offer --bind 127.0.0.1 --sdp-out o --sdp-in a -t 5 -q --json >offer.json &
kms-call answer --bind 127.0.0.1 --sdp-in o --sdp-out a -t 5 -q --json >answer.json
wait
for side in offer answer; do
  frames=$(jq '.videoFramesDecoded' $side.json)
  result=$(jq -r '.result' $side.json)
  [[ $result == ok && $frames -gt 60 ]] || { echo "call check: $side result $result, $frames frames"; exit 1; }
done
