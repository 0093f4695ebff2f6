#!/usr/bin/env bash
# The one-line live status is drawn on stderr only when stderr is a terminal (cron mail stays
# clean), and --quiet turns it off.
. "$(dirname "$0")/../lib/kms-test.sh"

rm -f o a; mkfifo o a
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a -t 3.5 2>off.err </dev/null &
PIDS+=($!); PID_off=$!
# script(1) gives the answerer a pseudo-terminal; what it draws comes out on script's stdout.
script -qefc "$KMS_CALL answer --bind 127.0.0.1 --sdp-in o --sdp-out a -t 3.5" /dev/null >tty.out </dev/null &
PIDS+=($!); PID_ans=$!
wait_for "$PID_off" 20; expect_rc 0 "offerer"
wait_for "$PID_ans" 20; expect_rc 0 "answerer on a terminal"
grep -q $'\r\033\[K00:0[1-9]  in [1-9][0-9]* kbit/s  [1-9][0-9]* fps' tty.out || fail "no status line on the terminal: $(cat -v tty.out | head -3)"
grep -q "kbit/s" off.err && fail "a status line went to a stderr that is a file"
pass "status line on terminals only"
