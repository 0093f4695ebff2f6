#!/usr/bin/env bash
# Issue 6: calls started and stopped at random moments (SIGINT, SIGTERM, -t, or the peer killed,
# at 0 to 3 s). Every process ends within its bound with a documented exit code; none is left.
# CHAOS_RUNS sets the count (30 here; scripts/soak runs 200).
. "$(dirname "$0")/../lib/kms-test.sh"

runs=${CHAOS_RUNS:-30}
RANDOM=${CHAOS_SEED:-$$}
declare -A seen=()
for n in $(seq "$runs"); do
  action=$((RANDOM % 4)); at=$(echo "scale=2; $((RANDOM % 300)) / 100" | bc); side=$((RANDOM % 2))
  extra=""; [[ $action == 2 ]] && extra="-t $(echo "$at + 0.01" | bc)"
  rm -f o a; mkfifo o a
  common="--bind 127.0.0.1 --ice-timeout 2 --sdp-timeout 3 --stats-interval 0.5"
  "$KMS_CALL" offer $common --sdp-out o --sdp-in a -o "r$n.webm" $([[ $side == 0 ]] && echo "$extra") \
    </dev/null >/dev/null 2>"off$n.err" & p0=$!
  "$KMS_CALL" answer $common --sdp-in o --sdp-out a $([[ $side == 1 ]] && echo "$extra") \
    </dev/null >/dev/null 2>"ans$n.err" & p1=$!
  PIDS+=($p0 $p1)
  target=$([[ $side == 0 ]] && echo $p0 || echo $p1); other=$([[ $side == 0 ]] && echo $p1 || echo $p0)
  # No program can catch a signal before its own code runs: the moments count from when the
  # target catches SIGINT and SIGTERM (bits 2 and 15 of SigCgt), not from the fork.
  for _ in $(seq 200); do
    cgt=$(awk '/^SigCgt:/ { print $2 }' "/proc/$target/status" 2>/dev/null || echo 0)
    (( (16#${cgt:-0} & 0x4002) == 0x4002 )) && break
    sleep 0.01
  done
  sleep "$at"
  case $action in
    0) kill -INT "$target" 2>/dev/null || true; what=SIGINT ;;
    1) kill -TERM "$target" 2>/dev/null || true; what=SIGTERM ;;
    2) what="-t $at" ;;
    3) kill -9 "$target" 2>/dev/null || true; what=SIGKILL ;;
  esac
  # The stopped side: 3 s; its peer: its own bounds (goodbye at once, or --ice-timeout 2 /
  # --sdp-timeout 3 after the other vanished) plus the 3 s a stop may take.
  start=$(date +%s.%N)
  wait_for "$target" 4; rc_t=$RC; t_t=$(echo "$(date +%s.%N) - $start" | bc)
  wait_for "$other" 8; rc_o=$RC
  label="run $n: $what at ${at}s to the $([[ $side == 0 ]] && echo offerer || echo answerer)"
  [[ $rc_t != 124 ]] || fail "$label: the stopped side hung ($(tail -1 "off$n.err" "ans$n.err" | tr '\n' ' '))"
  [[ $rc_o != 124 ]] || fail "$label: its peer hung"
  if [[ $action == 3 ]]; then
    [[ $rc_t == 137 ]] || fail "$label: SIGKILL gave $rc_t"
  else
    within "$t_t" 3.5 || fail "$label: the stop took ${t_t}s"
    [[ $rc_t =~ ^(0|4)$ ]] || fail "$label: exit $rc_t (0, or 4 before the call connected)"
  fi
  [[ $rc_o =~ ^(0|3|4|5)$ ]] || fail "$label: the peer exited $rc_o"
  for p in $p0 $p1; do ! kill -0 "$p" 2>/dev/null || fail "$label: process $p is still there"; done
  seen["$what/$rc_t/$rc_o"]=1
done
echo "outcomes (action/stopped/peer): $(printf '%s ' "${!seen[@]}" | sed 's/-t [0-9.]*/-t/g' | tr ' ' '\n' | sort -u | tr '\n' ' ')"
pass "$runs random stops, every process ended within its bound"
