# Shared helpers for the shell tests. Source it first thing:
#   . "$(dirname "$0")/../lib/kms-test.sh"
# It re-runs the test inside a private network namespace that holds only a loopback interface
# (testing.md, "The network rule"), makes a scratch directory, and kills every process the test
# started when it ends.
set -euo pipefail

BUILD=${KMS_BUILD:-${1:-build}}
BUILD=$(cd "$BUILD" && pwd)
KMS_CALL=$BUILD/apps/kms-call
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DATA=$TOP/tests/data
export KMS_BUILD=$BUILD

if [[ -z ${KMS_IN_NETNS:-} ]]; then
  export KMS_IN_NETNS=1
  # A mount namespace too, so the namespaces a test makes with `ip netns` stay private to it.
  exec unshare --net --mount --propagation private -- "$BASH" ${KMS_TRACE:+-x} "$0" "$@"
fi
ip link set lo up
mkdir -p /run/netns && mount -t tmpfs kms-netns /run/netns

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kms-test.XXXXXX")
PIDS=()
cleanup() {
  local rc=$?
  for p in "${PIDS[@]:-}"; do
    [[ -n $p ]] || continue
    kill -9 "$p" 2>/dev/null && { wait "$p" 2>/dev/null || true; }
  done
  if [[ $rc != 0 && -n ${KMS_KEEP:-} ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT
cd "$WORK"

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
# Runs a command in the background, remembering its PID for cleanup: bg NAME CMD...
# (Redirections go inside the command, e.g. bg x sh -c '...', not after bg.)
bg() { local n=$1; shift; "$@" & PIDS+=($!); eval "PID_$n=$!"; }
# Waits for a background PID with a deadline; sets RC. wait_for PID SECONDS
wait_for() {
  local pid=$1 secs=$2 i=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 0.1; i=$((i + 1))
    if (( i > secs * 10 )); then kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; RC=124; return; fi
  done
  set +e; wait "$pid"; RC=$?; set -e
}
# Hosts joined through a Linux NAT, each in its own namespace (testing.md):
#   cli 10.0.0.2 -- 10.0.0.1 nat 198.18.0.1 -- 198.18.0.10 and 198.18.0.11 srv
# NAT_MODE: "masquerade" (default) or "random" (MASQUERADE --random-fully). Run commands with
# `ip netns exec cli|nat|srv ...`. Namespaces die with the test's mount namespace.
nat_topology() {
  local mode=${1:-masquerade}
  ip netns add cli; ip netns add nat; ip netns add srv
  ip link add c0 netns cli type veth peer name n0 netns nat
  ip link add s0 netns srv type veth peer name n1 netns nat
  for ns in cli nat srv; do ip -n $ns link set lo up; done
  ip -n cli addr add 10.0.0.2/24 dev c0; ip -n cli link set c0 up
  ip -n cli route add default via 10.0.0.1
  ip -n nat addr add 10.0.0.1/24 dev n0; ip -n nat link set n0 up
  ip -n nat addr add 198.18.0.1/24 dev n1; ip -n nat link set n1 up
  ip -n srv addr add 198.18.0.10/24 dev s0; ip -n srv addr add 198.18.0.11/24 dev s0
  ip -n srv link set s0 up
  ip netns exec nat sysctl -qw net.ipv4.ip_forward=1
  if [[ $mode == random ]]; then
    ip netns exec nat iptables -t nat -A POSTROUTING -o n1 -j MASQUERADE --random-fully
  else
    ip netns exec nat iptables -t nat -A POSTROUTING -o n1 -j MASQUERADE
  fi
}
# ready WHAT SECONDS CMD...: CMD until it succeeds; fails naming WHAT when it never does.
ready() {
  local what=$1 secs=$2 end=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < end )) || fail "$what was not ready after ${secs}s"
    sleep 0.1
  done
}
# listening FILE: the address in the 'listening' event that kms-stun server/echo --events FILE
# writes once its sockets are bound. Slurped: `jq -e` without -s answers for the file's last
# line only, so once a request event followed, the check failed for good.
listening() { jq -ser 'map(select(.type=="listening")) | first | .listen' "$1" 2>/dev/null; }
# one_error FILE: FILE holds exactly one JSON object, and it has a non-empty "error".
one_error() { jq -se 'length == 1 and (.[0].error | type == "string" and length > 0)' "$1" >/dev/null; }
# stop NAME: SIGTERM to the process bg NAME started, and wait until it is gone (its ports free).
stop() {
  local pid; eval "pid=\$PID_$1"
  kill "$pid" 2>/dev/null || true
  wait_for "$pid" 5
  [[ $RC != 124 ]] || fail "$1 did not stop within 5 s of SIGTERM"
}
expect_rc() { [[ $RC == "$1" ]] || fail "$2: exit $RC, expected $1"; }
# Last value of FIELD among events of TYPE (optionally with kind KIND): ev FILE TYPE FIELD [KIND]
ev() {
  local kind=${4:-}
  if [[ -n $kind ]]; then jq -s "[.[] | select(.type==\"$2\" and .kind==\"$kind\") | .$3] | last // 0" "$1"
  else jq -s "[.[] | select(.type==\"$2\") | .$3] | last // 0" "$1"; fi
}
# Two kms-call joined by fifos: call_pair "OFFER ARGS" "ANSWER ARGS"; events in off.jsonl/ans.jsonl,
# stderr in off.err/ans.err; exit codes in RC_OFF/RC_ANS (124: killed at the deadline) and the
# seconds each process lived in T_OFF/T_ANS. Waits at most CALL_DEADLINE seconds.
call_pair() {
  rm -f o a off.jsonl ans.jsonl; mkfifo o a
  local start i=0 deadline=${CALL_DEADLINE:-30}
  start=$(date +%s.%N)
  "$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a --events off.jsonl $1 2>off.err >off.out </dev/null &
  PIDS+=($!); PID_off=$!
  "$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a --events ans.jsonl $2 2>ans.err >ans.out </dev/null &
  PIDS+=($!); PID_ans=$!
  T_OFF=""; T_ANS=""
  while [[ -z $T_OFF || -z $T_ANS ]]; do
    [[ -z $T_OFF ]] && ! kill -0 "$PID_off" 2>/dev/null && T_OFF=$(echo "$(date +%s.%N) - $start" | bc)
    [[ -z $T_ANS ]] && ! kill -0 "$PID_ans" 2>/dev/null && T_ANS=$(echo "$(date +%s.%N) - $start" | bc)
    if (( i++ > deadline * 20 )); then kill -9 "$PID_off" "$PID_ans" 2>/dev/null; break; fi
    sleep 0.05
  done
  set +e; wait "$PID_off"; RC_OFF=$?; wait "$PID_ans"; RC_ANS=$?; set -e
  [[ -n $T_OFF ]] || { T_OFF=$deadline; RC_OFF=124; }
  [[ -n $T_ANS ]] || { T_ANS=$deadline; RC_ANS=124; }
}
# within SECONDS MAX: true when SECONDS <= MAX (fractions allowed)
within() { (( $(echo "$1 <= $2" | bc) )); }
# Video kbit/s of a recording from its packet sizes between FROM and TO seconds: video_kbps FILE FROM TO
video_kbps() {
  ffprobe -v error -select_streams v:0 -show_entries packet=pts_time,size -of csv=p=0 "$1" |
    awk -F, -v a="$2" -v b="$3" '$1 >= a && $1 < b { s += $2 } END { printf "%.0f\n", s * 8 / (b - a) / 1000 }'
}
# Duration in seconds of stream SEL (v:0, a:0) of a file, as ffprobe counts its packets.
stream_secs() {
  ffprobe -v error -select_streams "$2" -show_entries packet=pts_time -of csv=p=0 "$1" |
    awk 'NR == 1 { a = $1 } { b = $1 } END { if (NR) printf "%.2f\n", b - a; else print 0 }'
}
show_logs() { for f in off.err ans.err; do [[ -s $f ]] && { echo "--- $f"; tail -5 "$f"; }; done >&2; }
