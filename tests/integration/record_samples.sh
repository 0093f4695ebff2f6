#!/usr/bin/env bash
# The recording samples work as shipped: the systemd units pass systemd-analyze verify without a
# word, and the cron script and the Kubernetes CronJob's command record a loopback RTSP camera
# (standing in for the real one) and apply their retention.
. "$(dirname "$0")/../lib/kms-test.sh"
S=$TOP/samples/record
mkdir bin && ln -s "$BUILD/apps/kms-record" bin/kms-record && export PATH=$PWD/bin:$PATH
"$BUILD/tests/rtsp-test-camera" 8554 "( videotestsrc is-live=1 ! video/x-raw,width=320,height=240,framerate=30/1 \
  ! x264enc tune=zerolatency key-int-max=30 ! rtph264pay name=pay0 pt=96 )" >cam.out 2>cam.err & PIDS+=($!)
ready "the RTSP camera" 10 grep -q ready cam.out
CAM=rtsp://127.0.0.1:8554/cam
plays() { ffprobe -v error -select_streams v:0 -show_entries packet=pts_time -of csv=p=0 "$1" | wc -l; }

# 1. systemd: the service and timer as an instance, ExecStart pointed at this build.
mkdir units
sed "s#/usr/bin/kms-record#$BUILD/apps/kms-record#" "$S/kms-record@.service" >units/kms-record@cam1.service
cp "$S/kms-record@.timer" units/kms-record@cam1.timer
set +e; systemd-analyze verify --man=no units/kms-record@cam1.service units/kms-record@cam1.timer >verify.out 2>&1; RC=$?; set -e
expect_rc 0 "systemd-analyze verify"
[[ ! -s verify.out ]] || fail "systemd-analyze verify says: $(cat verify.out)"
grep -q -- "--media-timeout 30 --rtsp-transport tcp \${CAMERA_URL}" "$S/kms-record@.service" || fail "the unit records no camera"
pass "the systemd service and timer verify cleanly"

# 2. cron: one file named by date and hour that plays, files older than KEEP_DAYS deleted.
mkdir rec
touch -d '10 days ago' rec/cam-20000101-00.mkv
touch rec/cam-recent.mkv
SECONDS_PER_FILE=3 "$S/cron-record.sh" "$CAM" rec
# Named by the hour it started in (read either side of the run, in case an hour turned).
f=rec/cam-$(date +%Y%m%d-%H).mkv
[[ -f $f ]] || f=$(ls rec/cam-"$(date +%Y)"*.mkv 2>/dev/null | head -1)
[[ -f $f ]] || fail "cron: no file named by date and hour; made $(ls rec)"
n=$(plays "$f"); (( n >= 60 )) || fail "cron: $f plays $n frames"
[[ ! -e rec/cam-20000101-00.mkv && -e rec/cam-recent.mkv ]] || fail "cron: retention kept $(ls rec)"
pass "the cron script records the camera into $(basename "$f") ($n frames) and keeps a week"

# 3. Kubernetes: two CronJobs, never two recorders of one camera; each one's command, run here
# with /rec a scratch folder and an hour cut to 3 s, records its camera.
python3 - "$S/kubernetes-cronjob.yaml" >k8s.cmds <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
assert len(docs) == 2 and all(d["kind"] == "CronJob" for d in docs), "two CronJobs"
for d in docs:
    assert d["spec"]["concurrencyPolicy"] == "Forbid"
    c = d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    print(c["args"][0].replace("/rec", "rec8s").replace("-t 3595", "-t 3"))
PY
mkdir rec8s
while read -r cmd; do CAMERA_URL=$CAM sh -c "$cmd" </dev/null || fail "k8s: '$cmd' exits $?"; done <k8s.cmds
for cam in cam1 cam2; do
  f=$(ls rec8s/"$cam"-"$(date +%Y)"*.mkv 2>/dev/null | head -1)
  [[ -n $f ]] || fail "k8s: $cam made no file named by date and hour: $(ls rec8s)"
  n=$(plays "$f"); (( n >= 60 )) || fail "k8s: $f plays $n frames"
done
pass "the Kubernetes CronJobs' commands record the camera"
