#!/usr/bin/env bash
# kms-stats on the events of a real call (issue 10): two kms-call on loopback, the offerer
# recording what it receives; the summary of each side is checked against the recording (ffprobe)
# and the raw events (jq); --assert exits 0, 8 and 2; the Prometheus textfile parses under the
# text-format rules and is replaced atomically; plot's SVG is well-formed with data in its lines.
. "$(dirname "$0")/../lib/kms-test.sh"
S=$BUILD/apps/kms-stats
run() { set +e; "$@"; RC=$?; set -e; }

call_pair "-t 8 -o rec.webm --stats-interval 0.5" "-t 8 --send test:av?pattern=ball --stats-interval 0.5"
show_logs
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || fail "the call: exit codes offer=$RC_OFF answer=$RC_ANS"

# 1. Both sides summarised as JSON; from stdin the same as from --events-in.
for side in off ans; do
  run "$S" --json --events-in $side.jsonl >$side.sum.json 2>$side.sum.err
  expect_rc 0 "summary of $side.jsonl"
  run "$S" --json <$side.jsonl >$side.stdin.json
  expect_rc 0 "summary of $side.jsonl on stdin"
  [[ $(jq -c 'del(.input)' $side.sum.json) == "$(jq -c 'del(.input)' $side.stdin.json)" ]] ||
    fail "$side: stdin and --events-in differ"
  jq -e '[.inbound[].kind] | sort == ["audio","video"]' $side.sum.json >/dev/null ||
    fail "$side: inbound kinds $(jq -c '[.inbound[].kind]' $side.sum.json)"
  jq -e '[.inbound[] | select(.kind=="video")][0].codec == "vp8"' $side.sum.json >/dev/null || fail "$side: video codec"
  # Frame rate: the 30 fps test pattern, as framesDecoded grew between the events.
  fps=$(jq -r '[.inbound[] | select(.kind=="video")][0].framesPerSecond' $side.sum.json)
  awk -v f="$fps" 'BEGIN { exit !(f > 15 && f < 35) }' || fail "$side: video at $fps fps"
  # Counters as the last event of the stream said, and the set-up timing as the timing event said.
  # (RTP counts a duplicate packet as one lost less, so packetsLost may be -1 in the events, as
  # RFC 3550 and W3C have it; the summary counts no loss below 0.)
  ssrc=$(jq -r '[.inbound[] | select(.kind=="video")][0].ssrc' $side.sum.json)
  last=$(jq -sc "[.[] | select(.type==\"inbound-rtp\" and .ssrc==$ssrc)] | last | [.packetsReceived, ([.packetsLost, 0] | max)]" $side.jsonl)
  [[ $(jq -c '[.inbound[] | select(.kind=="video")][0] | [.packetsReceived, .packetsLost]' $side.sum.json) == "$last" ]] ||
    fail "$side: packets $(jq -c '.inbound' $side.sum.json), the events say $last"
  [[ $(jq -c '.timing.phases' $side.sum.json) == "$(jq -sc '[.[] | select(.type=="timing")][0].phases' $side.jsonl)" ]] ||
    fail "$side: timing phases"
  # Round-trip time from the RTCP reports: ordered, and loopback-short. Receiver reports come at
  # random intervals of seconds (RFC 3550 §6.2), so one side of a short call may have none yet.
  jq -e '.roundTripTime == null or (.roundTripTime | .samples >= 1 and .min <= .p50 and .p50 <= .p95 and .min <= .mean and .mean <= .max and
    .p95 <= .max and .max < 0.1)' $side.sum.json >/dev/null || fail "$side: round-trip time $(jq -c .roundTripTime $side.sum.json)"
  # The peer reports on every stream we send in one RTCP packet: a side with a round-trip time
  # has one for each of its sent streams (webrtcbin's own statistics gave one of the two).
  jq -e '.roundTripTime == null or ([.outbound[] | .roundTripTime.samples // 0] | length == 2 and min >= 1)' \
    $side.sum.json >/dev/null || fail "$side: round-trip time per sent stream $(jq -c '[.outbound[] | [.kind, .roundTripTime]]' $side.sum.json)"
  # The last word on the stream (final) has the frames decoded to the end, as its packets are:
  # it repeated the previous event's framesDecoded, which read as the frame rate falling to 0 at
  # the end and pulled a 30 fps call under 25 fps in the summary. The call's own summary event
  # counts them after the stop too.
  final=$(jq -s "[.[] | select(.type==\"inbound-rtp\" and .ssrc==$ssrc and .final)] | last | .framesDecoded" $side.jsonl)
  total=$(jq -s '[.[] | select(.type=="summary")] | last | .videoFramesDecoded' $side.jsonl)
  [[ $final == "$total" ]] || fail "$side: the final inbound-rtp event says $final frames decoded, the summary $total"
  echo "$side: video $fps fps, rtt $(jq -c .roundTripTime $side.sum.json)"
done

# 2. The offerer's received video bitrate against what its recording holds, in the same seconds
# of the call (RTP payload headers and the pictures that arrived before the first event make
# the two differ by a little).
kbps=$(jq -r '[.inbound[] | select(.kind=="video")][0].bitrate / 1000 | floor' off.sum.json)
secs=$(stream_secs rec.webm v:0)
rec=$(video_kbps rec.webm 1 "$(echo "$secs - 0.5" | bc)")
echo "offerer: kms-stats says $kbps kbit/s of video, the recording holds $rec kbit/s"
awk -v a="$kbps" -v b="$rec" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0 && d <= b * 0.25) }' ||
  fail "received video $kbps kbit/s, but the recording holds $rec kbit/s"
jq -se 'map(.roundTripTime.samples // 0) | add >= 1' off.sum.json ans.sum.json >/dev/null ||
  fail "no round-trip time on either side of an 8 s call"
pass "summaries of both sides: tracks, codecs, frame rate, counters, timing, RTT; bitrate as recorded"

# 3. Text for people, from a side that has round-trip times (one may have none yet, as above);
# a side without says so.
rs=ans; jq -e '.roundTripTime != null' ans.sum.json >/dev/null || rs=off
run "$S" --events-in $rs.jsonl >$rs.txt
expect_rc 0 "text summary"
grep -q "^received" $rs.txt && grep -q "round-trip time (" $rs.txt && grep -q "^set-up (ms):.* ice " $rs.txt ||
  fail "text summary: $(cat $rs.txt)"
for side in off ans; do
  jq -e '.roundTripTime == null' $side.sum.json >/dev/null || continue
  run "$S" --events-in $side.jsonl >$side.txt
  grep -qx "round-trip time: no reports" $side.txt || fail "$side: no RTT, but the text says: $(cat $side.txt)"
done

# 4. Thresholds: hold (0), fail (8, naming the assertion and the measured value), malformed (2).
run "$S" -q --events-in $rs.jsonl --assert 'rtt.p95 < 150ms' --assert 'rtt.max < 100ms' --assert 'rtt.min > 0us'
expect_rc 0 "round-trip time assertions that hold"
run "$S" -q --events-in ans.jsonl --assert 'loss < 20%' --assert 'video.fps >= 10' \
  --assert 'bitrate > 20kbps'
expect_rc 0 "assertions that hold"
run "$S" -q --events-in ans.jsonl --assert 'loss < 20%' --assert 'video.fps > 1000fps' 2>e4
expect_rc 8 "an assertion that fails"
grep -qE "^kms-stats: assertion failed: video.fps > 1000fps: measured [0-9.]+fps$" e4 || fail "failure message: $(cat e4)"
[[ $(wc -l <e4) == 1 ]] || fail "more than the failed assertion reported: $(cat e4)"
run "$S" --events-in ans.jsonl --assert 'rtt.p95 < 150 parsecs' 2>e4b
expect_rc 2 "a malformed assertion"
[[ $(sed -n 2p e4b) == "  rtt.p95 < 150 parsecs" && $(sed -n 3p e4b) == "                ^" ]] ||
  fail "malformed assertion: no caret under the unit: $(cat -A e4b)"
run "$S" --events-in ans.jsonl --assert 'jitter > 5%' 2>e4c
expect_rc 2 "a unit that does not suit the metric"
grep -q "'%' does not suit jitter" e4c || fail "unit mismatch message: $(cat e4c)"
run "$S" --events-in ans.jsonl --json --assert 'video.fps > 1000' >a4.json 2>/dev/null
expect_rc 8 "--json with a failing assertion"
jq -e '.asserts[0].ok == false and (.asserts[0].measured > 10)' a4.json >/dev/null || fail "asserts in JSON: $(jq -c .asserts a4.json)"
pass "--assert: 0 when it holds, 8 naming the value when not, 2 with a caret when malformed"

# 5. Prometheus: parsed by the text-format rules; replaced by rename, leaving no temporary file.
mkdir prom
run "$S" -q --events-in ans.jsonl --prometheus prom/kms.prom
expect_rc 0 "--prometheus"
inode1=$(stat -c %i prom/kms.prom)
run "$S" -q --events-in off.jsonl --prometheus prom/kms.prom
expect_rc 0 "--prometheus again"
[[ $(stat -c %i prom/kms.prom) != "$inode1" ]] || fail "the textfile was rewritten in place, not renamed"
[[ $(ls -A prom) == kms.prom ]] || fail "left in the folder: $(ls -A prom)"
[[ $(stat -c %a prom/kms.prom) == 644 ]] || fail "textfile mode $(stat -c %a prom/kms.prom)"
# A parser of the text exposition format: prom_check FILE [SUMMARY.json] checks every line,
# and with a summary that its figures are the summary's.
cat >prom_check.py <<'EOF'
import json, re, sys
name_re = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*$')
sample_re = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
types, helps, seen, samples = {}, {}, set(), {}
for n, line in enumerate(open(sys.argv[1]).read().splitlines(), 1):
    def bad(why): sys.exit(f"line {n}: {why}: {line!r}")
    if line.startswith('# HELP '):
        name = line.split(' ')[2]
        if name in helps: bad("second HELP")
        helps[name] = line
    elif line.startswith('# TYPE '):
        parts = line.split(' ')
        if len(parts) != 4 or not name_re.match(parts[2]): bad("malformed TYPE")
        if parts[3] not in ('counter', 'gauge', 'summary', 'histogram', 'untyped'): bad("unknown type")
        if parts[2] in types: bad("second TYPE")
        if any(k == parts[2] for k, _ in samples): bad("TYPE after its samples")
        types[parts[2]] = parts[3]
    elif line.startswith('#') or not line:
        bad("a comment or blank line the format does not expect here")
    else:
        m = sample_re.match(line)
        if not m: bad("not a sample")
        name, labels = m.group(1), ()
        if m.group(3):
            rest, found = m.group(3), []
            while rest:
                lm = label_re.match(rest)
                if not lm: bad("malformed labels")
                found.append((lm.group(1), lm.group(2)))
                rest = rest[lm.end():]
            labels = tuple(found)
        if name not in types: bad("sample without a TYPE")
        if types[name] == 'counter' and not name.endswith('_total'): bad("counter not named _total")
        if types[name] != 'counter' and name.endswith('_total'): bad("a " + types[name] + " named _total")
        float(m.group(4))
        if (name, labels) in samples: bad("duplicate series")
        samples[(name, labels)] = float(m.group(4))
if len(sys.argv) < 3:
    sys.exit(0)
s = json.load(open(sys.argv[2]))
video = [t for t in s['inbound'] if t['kind'] == 'video'][0]
key = ('kms_inbound_rtp_packets_lost_total', (('kind', 'video'),))
assert types[key[0]] == 'counter', types.get(key[0])
assert samples[key] == video['packetsLost'], (samples.get(key), video['packetsLost'])
assert samples[('kms_inbound_rtp_packets_received_total', (('kind', 'video'),))] == video['packetsReceived']
assert types['kms_remote_inbound_rtp_round_trip_time_seconds'] == 'gauge'
assert abs(samples[('kms_remote_inbound_rtp_round_trip_time_seconds', (('stat', 'p95'),))] - s['roundTripTime']['p95']) < 1e-5
assert all(name in helps for name in types), "a name without HELP"
print(f"ok: {len(samples)} samples of {len(types)} metrics parse")
EOF
python3 prom_check.py prom/kms.prom off.sum.json
pass "Prometheus textfile: names, types, labels and values parse; renamed into place"

# 6. plot: well-formed SVG, four panels with labelled axes, polylines carrying the data points.
# From the side that has round-trip times ($rs, as in 3): the other may have none in 8 s.
run "$S" plot $rs.jsonl -o call.svg
expect_rc 0 "plot"
python3 - call.svg <<'EOF'
import sys, xml.etree.ElementTree as ET
ns = {'s': 'http://www.w3.org/2000/svg'}
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == '{http://www.w3.org/2000/svg}svg', root.tag
w, h = (float(v) for v in root.get('viewBox').split()[2:])
texts = [t.text for t in root.iter('{http://www.w3.org/2000/svg}text')]
for label in ('Bitrate', 'Frame rate', 'Packet loss', 'Round-trip time', 'kbit/s', 'frames per second', '% of packets', 'ms'):
    assert label in texts, f"no label {label!r}"
assert texts.count('time (s)') == 4, texts.count('time (s)')
lines = {}
for p in root.iterfind('.//s:polyline', ns):
    pts = [tuple(map(float, xy.split(','))) for xy in p.get('points').split()]
    assert pts and all(0 <= x <= w and 0 <= y <= h for x, y in pts), p.get('data-label')
    assert all(b[0] >= a[0] for a, b in zip(pts, pts[1:])), "time goes back"
    lines.setdefault(p.get('data-label'), []).append(len(pts))
assert max(lines['received video']) >= 8, lines
assert len(lines['received video']) == 3, lines          # bitrate, frame rate, loss
assert lines['round-trip time'][0] >= 1, lines
print("ok: svg", {k: v for k, v in lines.items()})
EOF
pass "plot: SVG with labelled axes and data in its polylines"

# 7. Bad input: not a kms event stream (3, naming the line); an unwritable textfile (7).
printf '{"type":"x","timestamp":1}\nnot json\n' >bad.jsonl
run "$S" --events-in bad.jsonl 2>e7
expect_rc 3 "a bad event stream"
grep -q "bad.jsonl line 2" e7 || fail "bad stream message: $(cat e7)"
run "$S" -q --events-in ans.jsonl --prometheus no-such-dir/kms.prom 2>e7b
expect_rc 7 "an unwritable textfile"
grep -q "no-such-dir/kms.prom" e7b || fail "unwritable textfile message: $(cat e7b)"
pass "bad events exit 3 with the line, an unwritable textfile 7"

# 8. --follow: a file that grows as a tool writes it, read until its writer's last words (the
# same summary as the whole file gives); a pipe, until it closes; a status line on a terminal
# only; SIGTERM ends it with the figures so far.
feed() { while IFS= read -r l; do printf '%s\n' "$l"; sleep 0.005; done <"$1"; }
: >grow.jsonl
bg fol "$S" --follow --json --events-in grow.jsonl >fol.json 2>fol.err
head -30 ans.jsonl >>grow.jsonl; sleep 0.6
kill -0 "$PID_fol" 2>/dev/null || fail "--follow stopped at the first end of the file"
tail -n +31 ans.jsonl | feed /dev/stdin >>grow.jsonl
wait_for "$PID_fol" 5
expect_rc 0 "--follow of a growing file"
[[ $(jq -c 'del(.input)' fol.json) == "$(jq -c 'del(.input)' ans.sum.json)" ]] || fail "--follow: $(cat fol.json)"
(head -30 ans.jsonl; sleep 0.5; tail -n +31 ans.jsonl) | "$S" --follow --json >fol2.json
[[ $(jq -c 'del(.input)' fol2.json) == "$(jq -c 'del(.input)' ans.sum.json)" ]] || fail "--follow of a pipe: $(cat fol2.json)"
! grep -q "kbit/s" fol.err || fail "a status line on stderr that is not a terminal: $(cat fol.err)"
: >grow3.jsonl
bg tty sh -c "exec script -qec '$S --follow --events-in grow3.jsonl >/dev/null' tty.out >/dev/null"
sleep 0.3; feed ans.jsonl >>grow3.jsonl
wait_for "$PID_tty" 5
expect_rc 0 "--follow on a terminal"
tr '\r' '\n' <tty.out | grep -aqE "^.\[K +[0-9.]+ s  video [0-9]+ kbit/s [0-9]+ fps loss" || fail "no status line: $(cat -v tty.out | head -5)"
head -50 ans.jsonl >part.jsonl
bg part "$S" --follow --json --events-in part.jsonl >part.json 2>/dev/null
sleep 0.6; stop part
expect_rc 0 "--follow stopped by SIGTERM"
[[ $(jq .events part.json) == 50 ]] || fail "--follow stopped by SIGTERM: $(jq -c .events part.json) events"
pass "--follow: a growing file to its writer's end, a pipe to its close, a status line on a terminal, SIGTERM"

# 9. --serve-metrics: GET /metrics answers with the figures of what --follow has read so far,
# parsed as above; the counters grow as the stream does; other paths 404, other methods 405.
: >srv.jsonl
bg srv "$S" --follow -q --events-in srv.jsonl --serve-metrics 127.0.0.1:9477 --events srv.ev
head -60 ans.jsonl >>srv.jsonl
ready "the metrics server" 5 curl -sf http://127.0.0.1:9477/metrics
sleep 0.4
curl -sf -D h1 http://127.0.0.1:9477/metrics >m1.prom || fail "GET /metrics"
python3 prom_check.py m1.prom || fail "the first scrape does not parse"
grep -qi '^content-type: text/plain; version=0.0.4' h1 || fail "content type: $(cat h1)"
sed -n 61,80p ans.jsonl >>srv.jsonl; sleep 0.5
curl -sf http://127.0.0.1:9477/metrics >m2.prom || fail "the second GET /metrics"
python3 prom_check.py m2.prom || fail "the second scrape does not parse"
v1=$(awk '/^kms_inbound_rtp_packets_received_total\{kind="video"\}/ { print $2 }' m1.prom)
v2=$(awk '/^kms_inbound_rtp_packets_received_total\{kind="video"\}/ { print $2 }' m2.prom)
(( ${v1:-0} > 0 && ${v2:-0} > ${v1:-0} )) || fail "video packets received did not grow between scrapes: $v1 then $v2"
[[ $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9477/other) == 404 ]] || fail "another path is not 404"
[[ $(curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:9477/metrics) == 405 ]] || fail "POST is not 405"
[[ $(jq -r 'select(.type=="listening") | .url' srv.ev) == http://127.0.0.1:9477/metrics ]] || fail "no listening event"
tail -n +81 ans.jsonl >>srv.jsonl
wait_for "$PID_srv" 5
expect_rc 0 "--serve-metrics ends with the stream"
run "$S" --events-in ans.jsonl --serve-metrics 127.0.0.1:9477 2>e9
expect_rc 2 "--serve-metrics without --follow"
pass "--serve-metrics: scrapes parse, video packets $v1 then $v2, 404 and 405, ends with the stream"
