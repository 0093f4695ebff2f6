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

# 16. A chat message on the terminal starts on a line of its own, not after the status line.
rm -f o a chat; mkfifo o a chat
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a --data chat -t 5 2>off.err <chat &
PIDS+=($!); PID_off=$!
script -qefc "$KMS_CALL answer --bind 127.0.0.1 --sdp-in o --sdp-out a --data chat -t 5" /dev/null >tty.out </dev/null &
PIDS+=($!); PID_ans=$!
exec 3>chat; sleep 2.5; echo "hello there" >&3
wait_for "$PID_off" 20; wait_for "$PID_ans" 20
grep -q "hello there" tty.out || fail "16: the message never reached the terminal"
grep -q $'kbit/s[^\r\n]*hello there' tty.out && fail "16: the message ran into the status line: $(grep -a 'hello there' tty.out | cat -v)"
echo "ok: 16 a chat message gets a line of its own"

# --quiet: no status line even on a terminal.
rm -f o a; mkfifo o a
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a -t 3 2>off.err </dev/null &
PIDS+=($!); PID_off=$!
script -qefc "$KMS_CALL answer --bind 127.0.0.1 --sdp-in o --sdp-out a -t 3 -q" /dev/null >tty.out </dev/null &
PIDS+=($!); PID_ans=$!
wait_for "$PID_off" 20; wait_for "$PID_ans" 20; expect_rc 0 "answerer -q on a terminal"
grep -q "kbit/s" tty.out && fail "--quiet still drew the status line"
pass "status line on terminals only, and out of the way of messages"
