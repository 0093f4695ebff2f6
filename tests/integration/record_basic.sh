#!/usr/bin/env bash
# kms-record: passthrough when the source's codecs fit the container (the source's own packets,
# byte for byte), a transcode that says so when they do not, --no-transcode, the exit codes of
# cli-contract.md, files that survive SIGKILL, and a live call recorded through a pipe.
. "$(dirname "$0")/../lib/kms-test.sh"
R=$BUILD/apps/kms-record

gst-launch-1.0 -q -e videotestsrc num-buffers=90 pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
  ! vp8enc deadline=1 ! webmmux name=m ! filesink location=vp8.webm audiotestsrc num-buffers=150 ! opusenc ! m.
gst-launch-1.0 -q -e videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 \
  ! x264enc ! h264parse ! mp4mux name=m ! filesink location=h264.mp4 audiotestsrc num-buffers=150 ! avenc_aac ! m.
codecs() { ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$1" | sort | paste -sd, -; }
video_md5s() { ffmpeg -v error -i "$1" -map 0:v:0 -c copy -f framemd5 - | awk -F, '!/^#/ { print $NF }' | sort -u; }
run() { set +e; "$@"; RC=$?; set -e; }

# 1. WebM into Matroska: nothing decoded; the file holds the source's own video packets.
run "$R" vp8.webm -o pass.mkv --events ev1.jsonl --json >res1.json 2>err1
expect_rc 0 "webm -> mkv"
[[ $(codecs pass.mkv) == "opus,vp8" ]] || fail "webm -> mkv: codecs $(codecs pass.mkv)"
jq -e '.transcoded == "no" and ([.tracks[] | .passthrough] | all) and (.tracks | length) == 2' res1.json >/dev/null ||
  fail "webm -> mkv: result $(cat res1.json)"
# The summary names the codecs as ffprobe does.
[[ $(jq -r '[.tracks[].codec] | sort | join(",")' res1.json) == "$(codecs pass.mkv)" ]] ||
  fail "webm -> mkv: summary codecs $(jq -c '[.tracks[].codec]' res1.json), ffprobe $(codecs pass.mkv)"
jq -se '[.[] | select(.type=="track" and .passthrough)] | length == 2' ev1.jsonl >/dev/null || fail "webm -> mkv: track events"
! grep -q '"transcoding"' ev1.jsonl || fail "webm -> mkv: a transcoding event"
same=$(comm -12 <(video_md5s vp8.webm) <(video_md5s pass.mkv) | wc -l)
(( same >= 85 )) || fail "webm -> mkv: only $same of 90 video packets are the source's"
pass "WebM into MKV passes through: $same video packets byte for byte, no transcoding"

# 1b. -t on a file is media time, as ffmpeg's -t: the first 1.5 s of a 3 s file, read in far less
# time (it used to be the clock: the whole file, since it was read within the 1.5 s). x264's
# B-frames make presentation times go back and forth; stdin is read as a file is.
for src in vp8.webm h264.mp4 stdin; do
  if [[ $src == stdin ]]; then run "$R" -q -t 1.5 - -o part-$src.mkv <vp8.webm
  else run "$R" -q -t 1.5 "$src" -o "part-$src.mkv"; fi
  expect_rc 0 "-t 1.5 on $src"
  for sel in v:0 a:0; do
    secs=$(stream_secs "part-$src.mkv" $sel)
    within "$(echo "($secs - 1.5)^2" | bc -l)" 0.01 || fail "-t 1.5 on $src: its $sel holds $secs s"
  done
done
pass "-t 1.5 on a file (WebM, MP4, stdin) records its first 1.5 s, audio and video"
# A stream left out (--no-audio) ends with the stop too, or the stop waits on it: on a stdin
# that stays open, -t 1 --no-audio exited 7 after the 10 s deadline.
run timeout 25 "$R" -q -t 1 --no-audio - -o part-open.mkv < <(cat vp8.webm; sleep 20)
expect_rc 0 "-t 1 --no-audio on a stdin left open"
[[ $(codecs part-open.mkv) == vp8 ]] || fail "-t 1 --no-audio: codecs $(codecs part-open.mkv)"
secs=$(stream_secs part-open.mkv v:0)
within "$(echo "($secs - 1)^2" | bc -l)" 0.01 || fail "-t 1 --no-audio on stdin: $secs s"
pass "-t 1 --no-audio on a stdin left open: 1 s of video, exit 0"

# 1c. Audio whose times step back 300 ms (a lip-sync correction, a camera's clock that jumped):
# the file's times only go forward, the frames whose time was already covered left out; the
# video, whose frames are all needed, untouched.
steps() { ffprobe -v error -select_streams "$2" -show_entries packet=pts_time -of csv=p=0 "$1" |
  grep -E '^[0-9]' | tr -d , | awk 'NR > 1 && $1 + 0 < p { n++ } { p = $1 + 0 } END { print n + 0, NR }'; }
# step_case KIND SEL: a file whose KIND steps back, recorded; n and n_src are then the frames of
# SEL in the recording and in the source.
step_case() {
  local back
  "$BUILD/tests/ts-step" "step-$1.mkv" "$1"
  read -r back n_src < <(steps "step-$1.mkv" "$2")
  (( back > 0 )) || fail "ts-step $1: the source does not step back"
  run "$R" -q "step-$1.mkv" -o "stepped-$1.mkv"
  expect_rc 0 "$1 stepping back"
  read -r back n < <(steps "stepped-$1.mkv" "$2")
  (( back == 0 )) || fail "$1 stepping back: the file steps back $back times"
}
step_case audio a:0
(( n >= n_src - 16 && n < n_src )) || fail "audio stepping back: $n of $n_src audio frames kept"
[[ $(video_md5s stepped-audio.mkv) == "$(video_md5s step-audio.mkv)" ]] || fail "audio stepping back: the video changed"
pass "audio stepping back 300 ms is written going forward ($n of $n_src frames), the video untouched"
# ... and video stepping back: left out up to the next key frame past where it was, so the file's
# video decodes without error.
step_case video v:0
(( n == n_src - 16 )) || fail "video stepping back: $n of $n_src video frames kept (16 up to the key frame left out)"
[[ -z $(ffmpeg -v error -i stepped-video.mkv -map 0:v -f null - 2>&1) ]] || fail "video stepping back: decoding errors"
pass "video stepping back 300 ms is written from the next key frame ($n of $n_src frames)"

# 2. H.264/AAC into WebM: both transcoded, each with an event naming both codecs and a line on
#    stderr, even with -q (cron's mail must say it), where a run that went as asked says nothing.
run "$R" -q vp8.webm -o quiet.mkv 2>err2q
expect_rc 0 "-q, passthrough"
[[ ! -s err2q ]] || fail "-q with nothing to report printed: $(cat err2q)"
run "$R" -q h264.mp4 -o trans.webm --events ev2.jsonl 2>err2
expect_rc 0 "mp4 -> webm"
[[ $(codecs trans.webm) == "opus,vp8" ]] || fail "mp4 -> webm: codecs $(codecs trans.webm)"
jq -se '[.[] | select(.type=="transcoding" and .kind=="video" and .from=="video/x-h264" and .to=="video/x-vp8")] | length == 1' \
  ev2.jsonl >/dev/null || fail "mp4 -> webm: no video transcoding event: $(cat ev2.jsonl)"
jq -se '[.[] | select(.type=="transcoding" and .kind=="audio" and .from=="audio/mpeg")] | length == 1' \
  ev2.jsonl >/dev/null || fail "mp4 -> webm: no audio transcoding event"
grep -q "transcoding video from video/x-h264 to video/x-vp8" err2 || fail "mp4 -> webm: stderr: $(cat err2)"
pass "H.264 into WebM transcodes and says so, -q or not"

# 3. --no-transcode: a mismatch is exit 5, found before anything is written.
run "$R" h264.mp4 -o refused.webm --no-transcode 2>err3
expect_rc 5 "--no-transcode"
[[ ! -e refused.webm ]] || fail "--no-transcode left a file"
grep -q "does not fit webm" err3 || fail "--no-transcode: $(cat err3)"
pass "--no-transcode refuses H.264 for WebM with 5 and no file"

# 4. A live source for -t 3: a file of 3 s, finished within a few seconds of the request.
start=$(date +%s.%N)
run "$R" -q -t 3 test:av -o t.webm
took=$(echo "$(date +%s.%N) - $start" | bc)
expect_rc 0 "test:av -t 3"
secs=$(stream_secs t.webm v:0)
within "$(echo "($secs - 3)^2" | bc)" 0.25 || fail "test:av -t 3: $secs s of video"
within "$took" 6 || fail "test:av -t 3 took $took s"
pass "test:av -t 3 records $secs s of video in $took s"

# 5. A folder that does not exist: 7 before anything starts, naming the path.
start=$(date +%s.%N)
run "$R" test:av -o missing-dir/x.mkv 2>err5
expect_rc 7 "missing folder"
grep -q "missing-dir/x.mkv: cannot write" err5 || fail "missing folder: $(cat err5)"
within "$(echo "$(date +%s.%N) - $start" | bc)" 2 || fail "missing folder: not refused at once"
run "$R" test:av -o missing-dir/x.mkv --json >res5.json 2>/dev/null
expect_rc 7 "missing folder, --json"
jq -e '.error | test("missing-dir/x.mkv: cannot write")' res5.json >/dev/null ||
  fail "missing folder: --json gave '$(cat res5.json)', not an object with error"
pass "a missing folder exits 7 at once, with --json an object that says why"

# 6. SIGKILL after 5 s leaves a file that plays at least 4 s, whatever the container.
for f in k.webm k.mkv k.mp4; do
  "$R" -q test:av -o "$f" & PIDS+=($!); p=$!
  sleep 5; kill -9 "$p"; wait "$p" 2>/dev/null || true
  secs=$(stream_secs "$f" v:0)
  within 4 "$secs" || fail "SIGKILL: $f plays $secs s"
  echo "  $f after SIGKILL: $secs s"
done
pass "SIGKILL after 5 s leaves WebM, MKV and MP4 that play 4 s or more"
# 6b. SIGKILL within the first second: MP4 writes nothing until its first fragment closes, and
# an empty file was left under the name (or in place of the recording it was to replace). The
# file now takes its name once it holds bytes: none, or one with video; an old file stays whole.
cp k.mp4 old.mp4; old=$(md5sum <old.mp4)
for t in 0.3 0.5 0.7 0.9 1.1; do
  "$R" -q test:av -o "early-$t.mp4" & PIDS+=($!); p=$!
  sleep "$t"; kill -9 "$p"; wait "$p" 2>/dev/null || true
  f=early-$t.mp4
  [[ ! -e $f ]] || (( $(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$f") > 0 )) ||
    fail "SIGKILL after $t s: $f is there with no video ($(stat -c %s "$f") bytes)"
done
"$R" -q test:av -o old.mp4 & PIDS+=($!); p=$!
sleep 0.4; kill -9 "$p"; wait "$p" 2>/dev/null || true
[[ $(md5sum <old.mp4) == "$old" ]] || [[ $(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 old.mp4) -gt 0 ]] ||
  fail "SIGKILL 0.4 s into a run over old.mp4 left it with no video"
pass "SIGKILL within the first second: no empty MP4 under its name, an old one kept until bytes came"

# 7. SIGTERM finalises: exit 0, the file states its duration, and it carries an index a player
#    seeks by. WebM and MKV: Cues with CuePoints that point at Clusters, found from the SeekHead.
#    MP4 stays fragmented (man page): an mfra at the end whose video entries point at moof boxes,
#    and the duration in the moov (mehd). No sample table in the moov, so ffprobe gives no
#    nb_frames without counting; the audio tfra of 1.22's mp4mux ends in an entry at offset 0
#    (gst-launch's files too), so only the video's entries are checked.
cat >index.py <<'PY'
import struct, sys
path = sys.argv[1]
b = open(path, 'rb').read()

def uint(s, e): return int.from_bytes(b[s:e], 'big')

def vint(i, keep):  # an EBML ID (marker kept) or size
    n = 1
    while n < 8 and not b[i] & (0x80 >> (n - 1)): n += 1
    v = b[i] if keep else b[i] & (0xff >> n)
    return (v << 8 * (n - 1)) | uint(i + 1, i + n), i + n

def ebml(s, e):  # (id, start, body, end) of each element in [s, e)
    while s < e:
        eid, j = vint(s, True); size, k = vint(j, False)
        yield eid, s, k, k + size
        s = k + size

def matroska():
    seg = next(x for x in ebml(0, len(b)) if x[0] == 0x18538067)
    top = {}
    for x in ebml(seg[2], seg[3]): top.setdefault(x[0], x)
    if 0x1C53BB6B not in top: return 'no Cues'
    _, at, body, end = top[0x1C53BB6B]
    points = [x for x in ebml(body, end) if x[0] == 0xBB]
    if not points: return 'Cues with no CuePoint'
    for p in points:  # CuePoint > CueTrackPositions > CueClusterPosition: a Cluster
        for t in (x for x in ebml(p[2], p[3]) if x[0] == 0xB7):
            pos = next(uint(x[2], x[3]) for x in ebml(t[2], t[3]) if x[0] == 0xF1)
            if vint(seg[2] + pos, True)[0] != 0x1F43B675: return 'a CuePoint that points at no Cluster'
    seeks = {}
    for s in ebml(top[0x114D9B74][2], top[0x114D9B74][3]):
        f = {x[0]: uint(x[2], x[3]) for x in ebml(s[2], s[3])} if s[0] == 0x4DBB else {}
        if 0x53AB in f and 0x53AC in f: seeks[f[0x53AB]] = f[0x53AC]
    if seeks.get(0x1C53BB6B) != at - seg[2]: return 'the SeekHead does not point at the Cues'
    return 'ok: %d CuePoints' % len(points)

def boxes(s, e):  # (type, start, body, end) of each box in [s, e)
    while s + 8 <= e:
        size, typ = struct.unpack('>I4s', b[s:s + 8]); h = 8
        if size == 1: size, h = uint(s + 8, s + 16), 16
        yield typ, s, s + h, s + size
        s += size

def child(box, typ): return next((x for x in boxes(box[2], box[3]) if x[0] == typ), None)

def mp4():
    top = list(boxes(0, len(b)))
    moov = next(x for x in top if x[0] == b'moov')
    if not child(child(moov, b'mvex') or moov, b'mehd'): return 'no mehd (duration) in the moov'
    video = None
    for trak in (x for x in boxes(moov[2], moov[3]) if x[0] == b'trak'):
        tkhd, hdlr = child(trak, b'tkhd'), child(child(trak, b'mdia'), b'hdlr')
        if b[hdlr[2] + 8:hdlr[2] + 12] == b'vide':
            video = uint(tkhd[2] + (20 if b[tkhd[2]] else 12), tkhd[2] + (24 if b[tkhd[2]] else 16))
    mfra = top[-1]
    if mfra[0] != b'mfra': return 'no mfra at the end'
    if uint(mfra[3] - 4, mfra[3]) != mfra[3] - mfra[1]: return 'an mfro with the wrong mfra size'
    for _, _, s, _ in (x for x in boxes(mfra[2], mfra[3]) if x[0] == b'tfra'):
        if uint(s + 4, s + 8) != video: continue
        v, sizes, n = b[s], uint(s + 8, s + 12), uint(s + 12, s + 16)
        w = 8 if v else 4
        rec = 2 * w + 3 + (sizes >> 4 & 3) + (sizes >> 2 & 3) + (sizes & 3)
        offs = [uint(s + 16 + k * rec + w, s + 16 + k * rec + 2 * w) for k in range(n)]
        if not offs: return 'no random-access point for the video'
        if any(b[o + 4:o + 8] != b'moof' for o in offs): return 'a video random-access point that is no moof'
        return 'ok: %d video random-access points' % n
    return 'no tfra for the video track'

print(mp4() if path.endswith('.mp4') else matroska())
PY
for f in term.webm term.mkv term.mp4; do
  "$R" -q test:av -o "$f" & PIDS+=($!); p=$!
  sleep 3; kill -TERM "$p"; set +e; wait "$p"; RC=$?; set -e
  expect_rc 0 "SIGTERM $f"
  d=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$f")
  [[ $d != N/A ]] && within 2 "$d" || fail "SIGTERM: $f states duration $d"
  index=$(python3 index.py "$f")
  [[ $index == ok:* ]] || fail "SIGTERM: $f has no usable index: $index"
  echo "  $f after SIGTERM: $d s, $index"
done
pass "SIGTERM finalises WebM, MKV and MP4 with their duration and an index"

# 7b. One stop sent twice at once is one stop: timeout(1), as crontabs use it, signals the
# recorder and then its process group. Two SIGTERMs 5 ms apart finalise the file (exit 0), as
# does timeout itself (call_hangs checks that a later second signal still exits 130).
"$R" -q test:av -o twice.mp4 & PIDS+=($!); p=$!
# 5 ms apart: after the first is handled (a shell's two kills would often merge into one
# pending signal) and before the recorder, which stops in some 12 ms, is gone.
sleep 3; python3 -c 'import os, sys, time; p = int(sys.argv[1]); os.kill(p, 15); time.sleep(0.005); os.kill(p, 15) if os.path.exists("/proc/%d" % p) else None' "$p"
set +e; wait "$p"; RC=$?; set -e
expect_rc 0 "two SIGTERMs 5 ms apart"
[[ $(python3 index.py twice.mp4) == ok:* ]] || fail "two SIGTERMs: twice.mp4 was not finalised"
set +e; timeout --preserve-status 3 "$R" -q test:av -o timeout.webm 2>timeout.err; RC=$?; set -e
expect_rc 0 "timeout 3 kms-record"
[[ $(python3 index.py timeout.webm) == ok:* ]] || fail "timeout: timeout.webm was not finalised: $(cat timeout.err)"
pass "a stop signalled twice at once (timeout(1)) finalises the file"

# 7c. A run that fails leaves an existing recording as it was (a cron job run again in the same
# hour with its camera down must not empty the hour already recorded); one that records
# replaces it, and nothing is left beside it.
"$R" -q -t 2 test:video -o keep.webm
before=$(md5sum <keep.webm)
run "$R" -q - -o keep.webm --media-timeout 1 < <(sleep 4) 2>/dev/null
expect_rc 6 "no media into an existing file"
run "$R" -q h264.mp4 -o keep.webm --no-transcode 2>/dev/null
expect_rc 5 "--no-transcode into an existing file"
[[ $(md5sum <keep.webm) == "$before" ]] || fail "a failed run changed keep.webm ($(stat -c %s keep.webm) bytes)"
chmod 640 keep.webm
run "$R" -q -t 1 test:video -o keep.webm
expect_rc 0 "a recording over an existing file"
[[ $(stat -c %a keep.webm) == 640 ]] || fail "the replaced keep.webm has mode $(stat -c %a keep.webm), not 640"
[[ $(md5sum <keep.webm) != "$before" ]] || fail "keep.webm was not replaced"
d=$(ffprobe -v error -show_entries format=duration -of csv=p=0 keep.webm)
within "$(echo "($d - 1)^2" | bc -l)" 0.1 || fail "keep.webm holds $d s, not the new 1 s"
[[ -z $(find . -maxdepth 1 -name '.keep.webm.kms-*') ]] || fail "a staging file was left: $(ls -A)"
pass "failed runs leave an existing file untouched; a recording replaces it ($d s)"
# -n keeps an existing file: 7 before anything starts, the file as it was, and --json says why.
before=$(md5sum <keep.webm)
run "$R" -n --json -t 1 test:video -o keep.webm >res7c.json 2>err7c
expect_rc 7 "-n over an existing file"
[[ $(md5sum <keep.webm) == "$before" ]] || fail "-n changed keep.webm"
grep -q 'keep.webm: exists' err7c || fail "-n: stderr says $(cat err7c)"
jq -e '.error | test("exists")' res7c.json >/dev/null || fail "-n --json: $(cat res7c.json)"
run "$R" -q --no-overwrite -t 1 test:video -o fresh.webm
expect_rc 0 "--no-overwrite to a new file"
[[ -s fresh.webm ]] || fail "--no-overwrite to a new file wrote nothing"
# --format that contradicts the name is a slip (2); a name without a container takes it.
run "$R" -q --format mp4 -t 1 test:video -o slip.webm 2>err7c
expect_rc 2 "--format mp4 -o slip.webm"
grep -q 'disagree' err7c || fail "--format against the name: $(cat err7c)"
[[ ! -e slip.webm ]] || fail "--format against the name left slip.webm"
run "$R" -q --format mkv -t 1 test:video -o take.part
expect_rc 0 "--format mkv -o take.part"
[[ $(ffprobe -v error -show_entries format=format_name -of default=nw=1:nk=1 take.part) == matroska* ]] ||
  fail "take.part is not Matroska"
pass "-n keeps an existing file (7); --format against the name is refused (2), without one it decides"

# 7d. .m4a, .mka and .weba are audio-only files: video is left out with a warning, and a source
# with only video is refused (2).
for f in a.m4a a.mka a.weba; do
  run "$R" -t 2 test:av -o "$f" 2>err7d
  expect_rc 0 "test:av into $f"
  kinds=$(ffprobe -v error -show_entries stream=codec_type -of csv=p=0 "$f" | sort -u | paste -sd, -)
  [[ $kinds == audio ]] || fail "$f holds $kinds"
  grep -q "warning" err7d || fail "$f: video left out without a warning: $(cat err7d)"
done
run "$R" -t 1 test:video -o v.m4a 2>/dev/null
expect_rc 2 "video alone into .m4a"
pass ".m4a, .mka and .weba take audio only"

# 8. A source that never sends: 6 within the timeout, and no file.
start=$(date +%s.%N)
run "$R" - -o none.mkv --media-timeout 2 < <(sleep 10) 2>err8
took=$(echo "$(date +%s.%N) - $start" | bc)
expect_rc 6 "--media-timeout"
[[ ! -e none.mkv ]] || fail "--media-timeout left a file"
within "$took" 5 || fail "--media-timeout 2 took $took s"
pass "a source that never sends exits 6 in $took s and leaves no file"

# 9. A live call: kms-call's recording stream piped into kms-record.
mkfifo o a
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a -t 6 2>off.err >/dev/null </dev/null & PIDS+=($!)
set +e
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a -t 6 -o - 2>ans.err </dev/null |
  "$R" -q - -o call.mkv --json >rec.json
st=("${PIPESTATUS[@]}"); set -e
[[ ${st[0]} == 0 && ${st[1]} == 0 ]] || { show_logs; fail "live call: exits ${st[*]}"; }
[[ $(codecs call.mkv) == "opus,vp8" ]] || fail "live call: codecs $(codecs call.mkv)"
secs=$(stream_secs call.mkv v:0)
within 3 "$secs" || fail "live call: $secs s of video"
jq -e '.transcoded == "no"' rec.json >/dev/null || fail "live call: $(cat rec.json)"
pass "kms-call -o - | kms-record - records $secs s of the call, untouched"

# 10. A disk that fills up (a 400 kB tmpfs in this test's own mount namespace). With the disk
# guard off (--min-free 0): 7, and what was written plays.
mkdir small && mount -t tmpfs -o size=400k kms-small small
run "$R" -q test:av -o small/full.mkv --min-free 0 2>err10
expect_rc 7 "full disk"
grep -q "small/full.mkv: cannot write" err10 || fail "full disk: $(cat err10)"
n=$(ffprobe -v error -count_packets -select_streams v:0 -show_entries stream=nb_read_packets -of csv=p=0 small/full.mkv)
(( n >= 10 )) || fail "full disk: the file plays $n video packets"
rm -f small/full.mkv
pass "a full disk exits 7 and the $n video packets written still play"

# 10b. With the guard (default 8M), a disk with less free is refused before anything starts.
run "$R" -q test:av -o small/guard.mkv 2>err10b
expect_rc 7 "--min-free at the start"
grep -q "small: its disk has .* free, less than the 8.0 MB a recording leaves free (--min-free)" err10b ||
  fail "--min-free at the start: $(cat err10b)"
[[ -z $(ls -A small) ]] || fail "--min-free at the start left $(ls -A small)"
umount small
pass "a disk with less than --min-free free is refused with 7 and no file"

# 10c. The guard stops a recording whose disk fills, and the file is finished: its duration is
# written (a file cut by a full disk has none), for Matroska and MP4; kms-call -o too.
mount -t tmpfs -o size=800k kms-small small
for ext in mkv mp4; do
  run "$R" -q test:av -o "small/guard.$ext" --min-free 300k --events "ev10c-$ext.jsonl" 2>err10c
  expect_rc 7 "--min-free ($ext)"
  grep -q "small/guard.$ext: the disk is nearly full (.* free, --min-free 300.0 kB): stopped, the file is finished" err10c ||
    fail "--min-free ($ext): $(cat err10c)"
  d=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "small/guard.$ext")
  [[ $d != N/A ]] && (( $(echo "$d >= 1" | bc -l) )) || fail "--min-free ($ext): the file's duration is $d"
  jq -se '[.[] | select(.type=="limit" and .minFree==300000 and .free < 300000)] | length == 1' "ev10c-$ext.jsonl" >/dev/null ||
    fail "--min-free ($ext): no limit event: $(cat "ev10c-$ext.jsonl")"
  rm -f "small/guard.$ext"
done
mkfifo o10 a10
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o10 --sdp-in a10 -t 30 2>off10.err >/dev/null </dev/null & PIDS+=($!)
run timeout 40 "$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o10 --sdp-out a10 -t 30 -o small/call.mkv --min-free 300k -q 2>ans10.err >/dev/null </dev/null
expect_rc 7 "kms-call --min-free"
grep -q "small/call.mkv: the disk is nearly full" ans10.err || fail "kms-call --min-free: $(cat ans10.err)"
d=$(ffprobe -v error -show_entries format=duration -of csv=p=0 small/call.mkv)
[[ $d != N/A ]] && (( $(echo "$d >= 1" | bc -l) )) || fail "kms-call --min-free: the file's duration is $d"
umount small
pass "--min-free stops kms-record (mkv, mp4) and kms-call -o with 7 and a finished file ($d s in the call's)"

# 11. kms-call's own recording survives SIGKILL the same way (MP4 needs H.264 from the peer).
mkfifo o2 a2
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o2 --sdp-in a2 -t 20 --video-codec h264 2>off2.err >/dev/null </dev/null & PIDS+=($!)
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o2 --sdp-out a2 -t 20 -o killed.mp4 2>ans2.err >/dev/null </dev/null & PIDS+=($!); p=$!
sleep 6; kill -9 "$p"; wait "$p" 2>/dev/null || true
secs=$(stream_secs killed.mp4 v:0)
within 3 "$secs" || fail "kms-call -o killed.mp4 after SIGKILL plays $secs s"
pass "kms-call -o call.mp4 killed after 6 s plays $secs s"

# 12. Segments: a new file every 2 s with the index and the date in its name, the newest 2 kept,
# and the hook run once per file with what it needs in its environment.
run "$R" -q -t 7 --segment 2 --max-files 2 test:av -o 'seg-%Y%m%d-%02i.mkv' --events ev12.jsonl \
  --on-segment 'echo "$KMS_SEGMENT_INDEX $KMS_SEGMENT_PATH $KMS_SEGMENT_DURATION $KMS_SEGMENT_BYTES" >>hook.log'
expect_rc 0 "segments"
day=$(date +%Y%m%d)
made=$(jq -s '[.[] | select(.type=="segment")] | length' ev12.jsonl)
(( made == 4 )) || fail "segments: $made files for -t 7 --segment 2"
[[ $(ls seg-* | paste -sd' ') == "seg-$day-02.mkv seg-$day-03.mkv" ]] || fail "segments: kept $(ls seg-*)"
jq -se '[.[] | select(.type=="deleted") | .path] == ["seg-'"$day"'-00.mkv", "seg-'"$day"'-01.mkv"]' ev12.jsonl >/dev/null ||
  fail "segments: deleted events"
# The hooks run side by side, and the last two segments finish together at the stop: their
# lines may come in either order, so they are read by index.
for i in 0 1 2; do
  read -r idx p d b < <(sort -n hook.log | sed -n "$((i + 1))p")
  [[ $idx == "$i" && $p == "seg-$day-0$i.mkv" && $b -gt 10000 ]] || fail "segments: hook line $((i + 1)): $idx $p $d $b"
  within "$(echo "($d - 2)^2" | bc -l)" 0.04 || fail "segments: segment $i lasts $d s"
done
[[ $(wc -l <hook.log) == 4 ]] || fail "segments: the hook ran $(wc -l <hook.log) times"
secs=$(stream_secs "seg-$day-02.mkv" v:0)
within 1.8 "$secs" || fail "segments: seg 2 plays $secs s"
[[ -z $(find . -maxdepth 1 -name '.seg-*.part') ]] || fail "segments: hidden files left: $(find . -name '.seg-*.part')"
pass "--segment 2 for 7 s: 4 files named by date and index, the oldest 2 deleted, the hook run 4 times"

# 12a. SIGKILL just after a segment opens: MP4 writes nothing until its first fragment closes,
# and an empty cam-2.mp4 was left under a recording's name (4 kills in 8 here). A file takes its
# name once it holds bytes; before that it is hidden (.cam-2.mp4.part), where no pattern looks.
mkdir killed
for t in 2.0 2.1 2.2 2.3 2.4 2.5; do
  "$R" -q test:av --segment 1 -o "killed/$t-%i.mp4" & PIDS+=($!); p=$!
  sleep "$t"; kill -9 "$p"; wait "$p" 2>/dev/null || true
done
n=0
for f in killed/*.mp4; do
  [[ -s $f ]] || fail "SIGKILL in a segment: $f is empty"
  (( $(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$f") > 0 )) ||
    fail "SIGKILL in a segment: $f holds no video"
  n=$((n + 1))
done
(( n >= 6 )) || fail "SIGKILL in a segment: only $n files for 6 runs of 2 s or more"
pass "SIGKILL just after a segment opens, 6 times: $n MP4 files, none empty, each with video"

# 12b. Date fields in folder names: the folders are made as segments need them, below a folder
#      that must exist; a missing one is refused before anything starts.
mkdir rec
run "$R" -q -t 3 --segment 2 test:video -o 'rec/%Y/%m/cam-%i.mkv' --json >res12b.json
expect_rc 0 "segments into dated folders"
month=$(date +%Y/%m)
[[ $(ls "rec/$month" | paste -sd' ') == "cam-0.mkv cam-1.mkv" ]] || fail "dated folders: $(find rec)"
# The result lists each file as it was finished.
[[ $(jq -c '[.files[].path]' res12b.json) == "[\"rec/$month/cam-0.mkv\",\"rec/$month/cam-1.mkv\"]" ]] &&
  jq -e '.segments == 2 and .files[0].bytes == '"$(stat -c %s "rec/$month/cam-0.mkv")"' and .files[0].duration > 1.5' \
    res12b.json >/dev/null || fail "segments' result: $(cat res12b.json)"
run "$R" -q -t 3 --segment 2 test:video -o 'nowhere/%Y/cam-%i.mkv' 2>err12b
expect_rc 7 "segments below a missing folder"
grep -q "nowhere: cannot write segments here" err12b || fail "missing base folder: $(cat err12b)"
# A dated folder that cannot be made (a file has its name): 7 when the first segment opens,
# saying why, and the pipeline taken down whole (no GStreamer CRITICAL about elements still
# playing: the failed file sink used to keep the pipeline from going down).
mkdir blocked; touch "blocked/$(date +%Y)"
run "$R" -q -t 3 --segment 1 test:av -o 'blocked/%Y/cam-%i.mkv' 2>err12b
expect_rc 7 "a dated folder that cannot be made"
grep -q "cannot write: .*blocked/$(date +%Y)/cam-0.mkv.*(is its folder there, and writable?)" err12b &&
  ! grep -q CRITICAL err12b || fail "a dated folder that cannot be made: $(cat err12b)"
pass "--segment into rec/%Y/%m/: the folders made; a missing base folder refused with 7, one that cannot be made 7 when reached"

# 12c. Retention counts what earlier runs left under the pattern (cron: one run an hour), and
#      nothing the pattern cannot name.
mkdir keep
for d in 20240101 20240102 20240103; do
  head -c 1000 /dev/zero >"keep/cam-$d-00.mkv"; touch -d "${d:0:4}-${d:4:2}-${d:6:2}" "keep/cam-$d-00.mkv"
done
touch keep/cam-notes.txt keep/cam-2024-00.mkv
run "$R" -q -t 5 --segment 2 --max-files 3 test:video -o 'keep/cam-%Y%m%d-%02i.mkv' --events ev12c.jsonl
expect_rc 0 "retention across runs"
day=$(date +%Y%m%d)
[[ $(ls keep | paste -sd' ') == "cam-2024-00.mkv cam-$day-00.mkv cam-$day-01.mkv cam-$day-02.mkv cam-notes.txt" ]] ||
  fail "retention across runs: left $(ls keep | paste -sd' ')"
jq -se '[.[] | select(.type=="deleted") | .path] == ["keep/cam-20240101-00.mkv", "keep/cam-20240102-00.mkv", "keep/cam-20240103-00.mkv"]' \
  ev12c.jsonl >/dev/null || fail "retention across runs: deleted events $(jq -c 'select(.type=="deleted")' ev12c.jsonl)"
pass "--max-files 3 deletes an earlier run's files under the pattern, oldest first, and nothing else"

# 12d. One file a run (cron) with a dated name: --max-files keeps the newest, this run's among them.
mkdir hourly
for d in 2024010100 2024010200 2024010300; do
  head -c 1000 /dev/zero >"hourly/cam-$d.mkv"; touch -d "${d:0:4}-${d:4:2}-${d:6:2}" "hourly/cam-$d.mkv"
done
run "$R" -q -t 2 --max-files 2 test:video -o 'hourly/cam-%Y%m%d%H.mkv' --events ev12d.jsonl
expect_rc 0 "one file a run, --max-files"
now=$(ls hourly | grep -v '^cam-2024')
[[ $(ls hourly | paste -sd' ') == "cam-2024010300.mkv $now" && $now == cam-$(date +%Y%m%d)*.mkv ]] ||
  fail "one file a run, --max-files 2: left $(ls hourly | paste -sd' ')"
[[ $(jq -s -c '[.[] | select(.type=="deleted") | .path]' ev12d.jsonl) == '["hourly/cam-2024010100.mkv","hourly/cam-2024010200.mkv"]' ]] ||
  fail "one file a run: deleted $(jq -s -c '[.[] | select(.type=="deleted") | .path]' ev12d.jsonl)"
run "$R" -q -t 1 --max-files 2 test:video -o plain.mkv 2>err12d
expect_rc 2 "--max-files with one undated file"
run "$R" -q -t 1 --segment 1 --max-files 0 test:video -o 'zero-%i.mkv' 2>err12d
expect_rc 2 "--max-files 0"
grep -q 'keep nothing' err12d || fail "--max-files 0: $(cat err12d)"
pass "one file a run named by date: --max-files 2 keeps this run's and the newest earlier one"

# 12e. --segment-size on a live source whose key frames are far apart (60 frames at 10 frame/s:
#      6 s, 1.5 MB of noise at 2 Mbit/s): kms-record asks its encoder for a key frame as a file
#      nears the size, and the file ends there. Without the ask each file was one 1.5 MB GOP.
run "$R" -q -t 10 --segment-size 500k 'test:av?fps=10&pattern=snow&width=320&height=240' \
  -o 'sized-%i.webm' --json >res12e.json
expect_rc 0 "--segment-size"
n=$(jq '.files | length' res12e.json)
sizes=$(jq -r '[.files[:-1][].bytes] | join(" ")' res12e.json)
(( n >= 4 )) || fail "--segment-size 500k for 10 s: $n files ($(jq -c '[.files[].bytes]' res12e.json))"
for b in $sizes; do
  (( b >= 425000 && b <= 500000 )) || fail "--segment-size 500k: a file of $b bytes (all: $sizes)"
done
for f in $(jq -r '.files[].path' res12e.json); do
  [[ $(ffprobe -v error -select_streams v:0 -show_entries packet=flags -of csv=p=0 "$f" | head -1) == K* ]] ||
    fail "--segment-size: $f does not begin with a key frame"
done
total=$(jq '[.files[].duration] | add' res12e.json)
within "$(echo "($total - 10)^2" | bc -l)" 0.25 || fail "--segment-size: the files hold $total s of 10"
pass "--segment-size 500k with key frames 6 s apart: $n files, each but the last 85-100% of the size ($sizes bytes)"

# 12f. A hidden file that a killed run left empty (nothing holds it) does not take its name; one
#      with bytes (a recording killed before it was named) is kept: a segment passes it over, a
#      single file moves it aside to a free name. One a recording holds while it writes it keeps
#      its name: a segment passes it over, a single file of that name is refused with 7.
mkdir left kept held
touch left/.cam-0.mkv.part
run "$R" -q -t 1 --segment 2 test:video -o 'left/cam-%i.mkv'
expect_rc 0 "segments beside a killed run's empty hidden file"
[[ $(ls -A left | paste -sd' ') == "cam-0.mkv" ]] || fail "a killed run's empty hidden file took the name: $(ls -A left)"
echo first >kept/.cam-0.mkv.part
echo second >kept/.one.mkv.part
run "$R" -q -t 1 --segment 2 test:video -o 'kept/cam-%i.mkv'
expect_rc 0 "segments beside a killed run's hidden file with bytes"
run "$R" -q -t 1 test:video -o kept/one.mkv
expect_rc 0 "a file beside a killed run's hidden file with bytes"
[[ $(ls -A kept | paste -sd' ') == ".cam-0.mkv.part cam-1.mkv one-1.mkv one.mkv" && $(cat kept/.cam-0.mkv.part) == first &&
   $(cat kept/one-1.mkv) == second ]] || fail "a killed run's hidden file with bytes: $(ls -A kept)"
secs=$(stream_secs kept/one.mkv v:0)
within 0.8 "$secs" || fail "a file beside a killed run's hidden file: it plays $secs s"
echo busy >held/.cam-0.mkv.part
echo busy >held/.one.mkv.part
(exec 8>>held/.cam-0.mkv.part 9>>held/.one.mkv.part; flock 8; flock 9; exec sleep 30) & PIDS+=($!); holder=$!  # as a recording holds them
ready "the lock on held/.one.mkv.part" 5 bash -c '! flock -n held/.one.mkv.part true'
run "$R" -q -t 1 --segment 2 test:video -o 'held/cam-%i.mkv'
expect_rc 0 "segments beside a hidden file being written"
run "$R" -q -t 1 test:video -o held/one.mkv 2>err12f
expect_rc 7 "a file whose hidden file is being written"
grep -q "another recording is writing it" err12f || fail "a file whose hidden file is being written: $(cat err12f)"
kill "$holder"
[[ $(ls -A held | paste -sd' ') == ".cam-0.mkv.part .one.mkv.part cam-1.mkv" && $(cat held/.cam-0.mkv.part held/.one.mkv.part) == "busy
busy" ]] || fail "a hidden file being written: $(ls -A held)"
# A name too long for its hidden file (six bytes longer) is written as it is: it was "taken", and
# every index up to 99999 was tried and refused (7).
mkdir long
long=$(printf 'a%.0s' $(seq 248))
run timeout 30 "$R" -q -t 1 --segment 2 test:video -o "long/$long-%i.mkv" 2>err12f
expect_rc 0 "segments whose names leave no room for a hidden one"
[[ $(ls long) == "$long-0.mkv" ]] || fail "a name too long for a hidden file: $(ls long | cut -c 240-) $(cat err12f)"
pass "hidden files: an empty one left gives up its name, one with bytes is kept, one being written is passed over (a segment) or refused (7)"

# 13. --max-size: the recording stops near the size, finished (its duration stated).
start=$(date +%s.%N)
run "$R" -q test:av -o capped.mkv --max-size 300k --events ev13.jsonl
expect_rc 0 "--max-size"
size=$(stat -c %s capped.mkv)
(( size >= 300000 && size < 600000 )) || fail "--max-size 300k: $size bytes"
d=$(ffprobe -v error -show_entries format=duration -of csv=p=0 capped.mkv)
[[ $d != N/A ]] && within 0.3 "$d" || fail "--max-size: duration $d"
jq -se '[.[] | select(.type=="limit" and .maxSize==300000)] | length == 1' ev13.jsonl >/dev/null || fail "--max-size: no limit event"
pass "--max-size 300k stops at $size bytes with a finished file"

# 13b. --max-size on a file read far faster than real time (it was polled four times a second,
# so the whole 10 s file, 2.5 MB, was written under a 300k cap), MP4 and WebM, and on stdout:
# the muxer's output is counted as it is written and every stream ends at the cap.
gst-launch-1.0 -q -e videotestsrc num-buffers=300 pattern=snow ! video/x-raw,width=320,height=240,framerate=30/1 \
  ! vp8enc deadline=1 target-bitrate=2000000 ! webmmux name=m ! filesink location=big.webm \
  audiotestsrc num-buffers=500 ! opusenc ! m.
(( $(stat -c %s big.webm) > 1500000 )) || fail "--max-size: the 10 s source is only $(stat -c %s big.webm) bytes"
for ext in webm mp4; do
  run "$R" -q big.webm -o "capfile.$ext" --max-size 300k --events "ev13b-$ext.jsonl" 2>/dev/null
  expect_rc 0 "--max-size on a file into $ext"
  size=$(stat -c %s "capfile.$ext")
  # MP4 adds the fragment its muxer held (a second at most) and its index.
  (( size >= 300000 && size < 450000 )) || fail "--max-size 300k on a 10 s file into $ext: $size bytes"
  secs=$(stream_secs "capfile.$ext" v:0)
  within 0.5 "$secs" && within "$secs" 3 || fail "--max-size 300k on a file into $ext: $secs s of video"
  jq -se '[.[] | select(.type=="limit")] | length == 1' "ev13b-$ext.jsonl" >/dev/null || fail "--max-size on a file: no limit event"
done
bytes=$("$R" -q big.webm -o - --max-size 200k | wc -c)
(( bytes >= 200000 && bytes < 300000 )) || fail "--max-size 200k on stdout: $bytes bytes"
run "$R" -q test:av -o seg.mkv --segment 1 --max-size 200k 2>err13b
expect_rc 2 "--max-size with --segment"
grep -q -- "--segment-size" err13b || fail "--max-size with --segment: $(cat err13b)"
pass "--max-size 300k on a 10 s file read at once: $size bytes ($secs s), and 200k on stdout: $bytes bytes"

# 14. --tracks: a kind asked for that never comes is reported, not silently left out.
run "$R" -t 3 --tracks audio,video --tracks-timeout 1 test:video -o novideo.webm --events ev14.jsonl 2>err14
expect_rc 0 "--tracks"
jq -se '[.[] | select(.type=="track-missing" and .kind=="audio")] | length == 1' ev14.jsonl >/dev/null ||
  fail "--tracks: no track-missing event: $(cat ev14.jsonl)"
grep -q "no audio from test:video within 1 s" err14 || fail "--tracks: stderr: $(cat err14)"
! jq -se '[.[] | select(.type=="track-missing" and .kind=="video")] | length > 0' ev14.jsonl >/dev/null || fail "--tracks: video reported missing"
pass "--tracks audio,video reports the audio that never came"

# 15. WAV (PCM, one audio track): a WebM's Opus decoded into it, its video left out with a
#     warning; WAV cannot be cut into segments (2).
run "$R" vp8.webm -o talk.wav 2>err15
expect_rc 0 "webm -> wav"
[[ $(codecs talk.wav) == "pcm_s16le" ]] || fail "webm -> wav: codecs $(codecs talk.wav)"
d=$(ffprobe -v error -show_entries format=duration -of csv=p=0 talk.wav)
within "$(echo "($d - 3)^2" | bc -l)" 0.04 || fail "webm -> wav: $d s of 3"
grep -q "video.*left out" err15 || fail "webm -> wav: the video's leaving is not said: $(cat err15)"
run "$R" -q -t 3 --segment 1 test:audio -o seg.wav 2>err15b
expect_rc 2 "wav segments"
grep -q "WAV is not cut into segments" err15b || fail "wav segments: $(cat err15b)"
pass "Opus into WAV ($d s of PCM), the video left out and said; WAV segments refused with 2"

# 16. A restarted segmented recording never writes over the last run's files: the index moves
#     on; a one-file run makes its dated folders too; WAV is not written to a pipe (2).
mkdir again
run "$R" -q -t 3 --segment 2 test:video -o 'again/cam-%i.mkv'
expect_rc 0 "segments, first run"
first=$(md5sum again/cam-0.mkv | cut -d' ' -f1)
run "$R" -q -t 3 --segment 2 test:video -o 'again/cam-%i.mkv' \
  --on-segment 'echo "$KMS_SEGMENT_INDEX $(basename "$KMS_SEGMENT_PATH")" >>again.log'
expect_rc 0 "segments, second run"
# The hook's index is the one in the name (it was the run's count: 0 for cam-2.mkv).
for _ in $(seq 50); do (( $(wc -l <again.log) >= 2 )) && break; sleep 0.1; done
[[ $(sort again.log | paste -sd,) == "2 cam-2.mkv,3 cam-3.mkv" ]] || fail "restart: the hook was told $(paste -sd, again.log)"
[[ $(ls again | paste -sd' ') == "cam-0.mkv cam-1.mkv cam-2.mkv cam-3.mkv" ]] || fail "restart: $(ls again | paste -sd' ')"
[[ $(md5sum again/cam-0.mkv | cut -d' ' -f1) == "$first" ]] || fail "restart: the first run's cam-0.mkv was written over"
# Without %i the date names the files: two segments of one day (or a restart that day) share a
# name, and the later took it (4 segments reported, 1 file left). A taken name gets -1, -2...
mkdir day
run "$R" -q -t 3 --segment 1 test:video -o 'day/cam-%Y%m%d.mkv' --json >day.json
expect_rc 0 "segments named by the day alone"
d=$(date +%Y%m%d)
n=$(ls day | wc -l)
(( n >= 3 )) && [[ -s day/cam-$d.mkv && -s day/cam-$d-1.mkv && -s day/cam-$d-2.mkv ]] ||
  fail "segments named by the day: $(ls day | paste -sd' ')"
[[ $(jq -r '[.files[].path] | unique | length' day.json) == "$n" ]] ||
  fail "the summary names $(jq -c '[.files[].path]' day.json), the folder holds $(ls day | paste -sd' ')"
mkdir one
run "$R" -q -t 1 test:video -o 'one/%Y/%m/cam-%d.mkv'
expect_rc 0 "one file in dated folders"
[[ -s one/$(date +%Y/%m/cam-%d).mkv ]] || fail "one file in dated folders: $(find one)"
run "$R" -q -t 1 test:audio --format wav -o - 2>err16 >/dev/null
expect_rc 2 "wav to stdout"
pass "a restart numbers on (4 files, the first run's untouched); segments without %i take -1, -2; dated folders for one file; WAV to a pipe refused"
