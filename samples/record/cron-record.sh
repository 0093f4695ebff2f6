#!/usr/bin/env bash
# Records an RTSP camera for cron: one file per hour, named by date and hour, and a week of them
# kept. Run it at the top of every hour; each run is one process that records its hour and
# exits, so a crash or a camera outage costs at most the rest of that hour.
#
#   0 * * * *  recorder  /usr/local/share/kms/samples/record/cron-record.sh rtsp://cam1.lan/stream /srv/rec/cam1
#
# Cron mails what the script prints, which is nothing unless the recording failed (kms-record is
# quiet with -q; its exit status says why: 4 camera unreachable, 6 no media, 7 disk).
# Environment: SECONDS_PER_FILE (3600), KEEP_DAYS (7), KMS_RECORD (kms-record).
set -euo pipefail
camera=${1:?usage: cron-record.sh RTSP_URL DIR}
dir=${2:?usage: cron-record.sh RTSP_URL DIR}
secs=${SECONDS_PER_FILE:-3600}
keep=${KEEP_DAYS:-7}
mkdir -p "$dir"
# Files older than the retention go first, so a full disk frees itself before recording.
find "$dir" -maxdepth 1 -name 'cam-*.mkv' -mtime +"$keep" -delete
# A few seconds short of the hour, so this run ends before cron starts the next one.
"${KMS_RECORD:-kms-record}" -q -t "$((secs > 10 ? secs - 5 : secs))" --media-timeout 30 \
  --rtsp-transport tcp "$camera" -o "$dir/cam-$(date +%Y%m%d-%H).mkv"
