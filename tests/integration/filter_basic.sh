#!/usr/bin/env bash
# kms-filter: every named filter proves its effect on the output it writes (read back with
# ffmpeg/ffprobe), analytics filters report what is in the media, and mistakes exit with the
# documented codes.
. "$(dirname "$0")/../lib/kms-test.sh"
F=$BUILD/apps/kms-filter
R=$BUILD/apps/kms-record
run() { set +e; "$@"; RC=$?; set -e; }
probe() { ffprobe -v error -select_streams "$2" -show_entries "stream=$3" -of csv=p=0 "$1"; }
frames() { ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$1"; }
# Mean PSNR (dB) of the video of A against B, decoded; "inf" (identical) reads as 99.
psnr() {
  ffmpeg -v info -nostats -i "$1" -i "$2" -lavfi "[0:v][1:v]psnr" -f null - 2>&1 |
    sed -n 's/.*average:\([0-9.inf]*\).*/\1/p' | sed 's/inf/99/' | tail -1
}
above() { (( $(echo "$1 > $2" | bc -l) )); }

# Fixtures: SMPTE bars (left and right differ, so a mirror shows) with a tone, in VP8/Opus.
gst-launch-1.0 -q videotestsrc num-buffers=30 pattern=smpte ! video/x-raw,width=320,height=240,framerate=15/1 ! \
  vp8enc deadline=1 target-bitrate=1500000 ! m. audiotestsrc num-buffers=100 ! opusenc ! m. \
  matroskamux name=m ! filesink location=bars.mkv
ffmpeg -v error -i bars.mkv -vf hflip -c:v rawvideo -an ref-hflip.mkv
ffmpeg -v error -i bars.mkv -vf vflip -c:v rawvideo -an ref-vflip.mkv

# 1. flip: the output matches ffmpeg's hflip of the input, not the input; audio untouched.
run "$F" -i bars.mkv -o flip.mkv flip --json >flip.json
expect_rc 0 flip
p_ref=$(psnr flip.mkv ref-hflip.mkv); p_in=$(psnr flip.mkv bars.mkv)
above "$p_ref" 30 && ! above "$p_in" 20 || fail "flip: PSNR $p_ref against hflip, $p_in against the input"
[[ $(probe flip.mkv v:0 codec_name) == vp8 && $(probe flip.mkv a:0 codec_name) == opus ]] ||
  fail "flip: codecs changed"
jq -e '.videoFrames == 30' flip.json >/dev/null || fail "flip: $(cat flip.json)"
jq -e '[.links[] | select(.kind == "audio" and .from != .to)] | length == 0' flip.json >/dev/null ||
  fail "flip: the audio was decoded: $(cat flip.json)"
pass "flip mirrors (PSNR $p_ref dB against ffmpeg hflip, $p_in against the input); VP8 stays VP8, Opus untouched"

# 1b. flip v turns the picture upside down, and flip takes no options (it has none to pass on).
run "$F" -i bars.mkv -o flipv.mkv flip v
expect_rc 0 "flip v"
p_ref=$(psnr flipv.mkv ref-vflip.mkv); p_in=$(psnr flipv.mkv bars.mkv)
above "$p_ref" 30 && ! above "$p_in" 20 || fail "flip v: PSNR $p_ref against vflip, $p_in against the input"
run "$F" -i bars.mkv -o null: flip h method=clockwise 2>err
expect_rc 2 "flip with an option"
grep -q "filter flip: takes no KEY=VALUE options" err || fail "flip with an option: $(cat err)"
pass "flip v matches ffmpeg's vflip (PSNR $p_ref dB, $p_in against the input); flip refuses options (exit 2)"

# 2. A gst-launch fragment of two elements: upside down and grey.
run "$F" -i bars.mkv -o frag.mkv 'videoflip video-direction=vert ! videobalance saturation=0'
expect_rc 0 fragment
p=$(ffmpeg -v info -nostats -i frag.mkv -i ref-vflip.mkv -lavfi "[1:v]hue=s=0[g];[0:v][g]psnr" -f null - 2>&1 |
    sed -n 's/.*average:\([0-9.inf]*\).*/\1/p' | sed 's/inf/99/')
above "$p" 30 || fail "fragment: PSNR $p against ffmpeg's vflip,hue=s=0"
pass "a two-element fragment matches ffmpeg's vflip,hue=s=0 (PSNR $p dB)"

# 2a. kms's own elements named in a fragment, as the man page says they can be.
run "$F" -i bars.mkv -o frag-kms.mkv 'kmsflip vertical=true ! kmsgrayscale'
expect_rc 0 "fragment of kms elements"
p=$(ffmpeg -v info -nostats -i frag-kms.mkv -i ref-vflip.mkv -lavfi "[1:v]hue=s=0[g];[0:v][g]psnr" -f null - 2>&1 |
    sed -n 's/.*average:\([0-9.inf]*\).*/\1/p' | sed 's/inf/99/')
above "$p" 30 || fail "fragment 'kmsflip vertical=true ! kmsgrayscale': PSNR $p against ffmpeg's vflip,hue=s=0"
pass "a fragment of kmsflip and kmsgrayscale matches ffmpeg's vflip,hue=s=0 (PSNR $p dB)"

# 2b. The same with videoflip's older property, as tutorials write it (1.22's parser loses it).
run "$F" -i bars.mkv -o frag2.mkv 'videoflip method=horizontal-flip ! videobalance saturation=0'
expect_rc 0 "fragment with method="
p=$(ffmpeg -v info -nostats -i frag2.mkv -i ref-hflip.mkv -lavfi "[1:v]hue=s=0[g];[0:v][g]psnr" -f null - 2>&1 |
    sed -n 's/.*average:\([0-9.inf]*\).*/\1/p' | sed 's/inf/99/')
above "$p" 30 || fail "fragment with method=horizontal-flip: PSNR $p against ffmpeg's hflip,hue=s=0"
pass "videoflip method=horizontal-flip mirrors too (PSNR $p dB against ffmpeg's hflip,hue=s=0)"

# 2c. --video-codec and --max-bitrate hold with no video filter: the video is encoded again
#     (they were ignored unless a filter changed the video).
run "$F" -i bars.mkv -o lvl264.mkv level --video-codec h264 --events /dev/null
expect_rc 0 "level --video-codec h264"
[[ $(probe lvl264.mkv v:0 codec_name) == h264 && $(probe lvl264.mkv a:0 codec_name) == opus ]] ||
  fail "level --video-codec h264: $(probe lvl264.mkv v:0 codec_name),$(probe lvl264.mkv a:0 codec_name)"
vbytes() { ffprobe -v error -select_streams v:0 -show_entries packet=size -of csv=p=0 "$1" | awk '{ s += $1 } END { print s }'; }
run "$F" -i bars.mkv -o vol.mkv volume 0.5 --max-bitrate 50
expect_rc 0 "volume --max-bitrate 50"
vb=$(vbytes vol.mkv); ib=$(vbytes bars.mkv)
(( vb * 2 < ib )) || fail "volume --max-bitrate 50: video $vb bytes, the input's $ib"
pass "--video-codec h264 and --max-bitrate 50 apply with only audio filters ($vb of $ib video bytes)"

# 3. grayscale: the chroma planes are flat (U and V at 128), the input's were not.
chroma_span() {
  ffprobe -v error -f lavfi "movie=$1,signalstats" -show_entries \
    frame_tags=lavfi.signalstats.UMIN,lavfi.signalstats.UMAX,lavfi.signalstats.VMIN,lavfi.signalstats.VMAX -of csv=p=0 |
    awk -F, '{ u = $2 - $1; v = $4 - $3; m = u > v ? u : v; if (m > max) max = m } END { print max + 0 }'
}
run "$F" -i bars.mkv -o gray.mkv grayscale
expect_rc 0 grayscale
g=$(chroma_span gray.mkv); c=$(chroma_span bars.mkv)
(( g <= 6 && c > 100 )) || fail "grayscale: chroma spans $g (input $c)"
pass "grayscale leaves the chroma planes flat (span $g, the input's $c)"

# 4. image: pixels change only where the picture lies.
gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=white ! video/x-raw,width=64,height=64 ! pngenc ! \
  filesink location=logo.png
run "$F" -i bars.mkv -o logo.mkv image logo.png x=16 y=16
expect_rc 0 image
run "$F" -i bars.mkv -o same.mkv identity
expect_rc 0 "identity fragment"
region() { ffmpeg -v info -nostats -i logo.mkv -i same.mkv -lavfi "[0:v]crop=$1[a];[1:v]crop=$1[b];[a][b]psnr" -f null - 2>&1 |
  sed -n 's/.*average:\([0-9.inf]*\).*/\1/p' | sed 's/inf/99/'; }
inside=$(region 48:48:24:24); outside=$(region 160:240:160:0)
above "$outside" 35 && ! above "$inside" 20 || fail "image: PSNR inside $inside, outside $outside"
pass "image changes its region only (PSNR $inside dB inside, $outside outside)"

# 5. scale and fps, as ffprobe reads them back; rotate turns the picture.
run "$F" -i bars.mkv -o small.mkv scale 160x96 fps 5
expect_rc 0 "scale fps"
[[ $(probe small.mkv v:0 width,height) == "160,96" ]] || fail "scale: $(probe small.mkv v:0 width,height)"
[[ $(probe small.mkv v:0 r_frame_rate) == "5/1" ]] || fail "fps: $(probe small.mkv v:0 r_frame_rate)"
n=$(frames small.mkv); (( n >= 9 && n <= 12 )) || fail "fps 5: $n frames of 2 s"
run "$F" -i bars.mkv -o turned.mkv rotate 90
[[ $(probe turned.mkv v:0 width,height) == "240,320" ]] || fail "rotate: $(probe turned.mkv v:0 width,height)"
pass "scale 160x96 fps 5 gives 160x96 at 5 frame/s ($n frames); rotate 90 gives 240x320"

# 6. qr: a code made by qrencode is read back exactly; the video goes through untouched.
qrencode -s 6 -m 4 -o qr.png "kms-filter test 7"
gst-launch-1.0 -q filesrc location=qr.png ! pngdec ! videoconvert ! imagefreeze num-buffers=15 ! \
  video/x-raw,framerate=15/1 ! videoconvert ! vp8enc deadline=1 ! webmmux ! filesink location=qr.webm
run "$F" -i qr.webm -o qr-out.webm qr >qr.jsonl
expect_rc 0 qr
jq -se '[.[] | select(.type == "code-found")] | .[0].text == "kms-filter test 7" and .[0].symbology == "QR-Code"' \
  qr.jsonl >/dev/null || fail "qr: $(cat qr.jsonl)"
cmp -s <(ffprobe -v error -show_entries packet=size -of csv=p=0 qr.webm) \
  <(ffprobe -v error -show_entries packet=size -of csv=p=0 qr-out.webm) || fail "qr: the video was re-encoded"
pass "qr reads \"kms-filter test 7\" and passes the VP8 packets through untouched"

# 7. faces: one face in the astronaut's portrait (tests/data/faces), none in test bars.
gst-launch-1.0 -q filesrc location="$DATA/faces/astronaut.jpg" ! jpegdec ! videoconvert ! imagefreeze num-buffers=5 ! \
  video/x-raw,framerate=5/1 ! videoconvert ! vp8enc deadline=1 ! webmmux ! filesink location=face.webm
run "$F" -i face.webm -o null: face-detect >face.jsonl
expect_rc 0 face-detect
jq -se '[.[] | select(.type == "faces")] | length > 0 and (.[0].faces[0].width > 20)' face.jsonl >/dev/null ||
  fail "face-detect: $(cat face.jsonl)"
run "$F" -i bars.mkv -o null: face-detect >noface.jsonl
! grep -q '"faces"' noface.jsonl || fail "face-detect found a face in test bars: $(cat noface.jsonl)"
run "$F" -i face.webm -o boxed.webm faces >/dev/null
expect_rc 0 faces
p=$(psnr boxed.webm face.webm); ! above "$p" 45 || fail "faces drew nothing (PSNR $p)"
pass "face-detect finds the face in a portrait and none in bars; faces draws its box (PSNR $p dB)"

# 8. speech: most words of a sentence spoken by espeak-ng.
sentence="the quick brown fox jumps over the lazy dog"
espeak-ng -w say.wav "$sentence"
gst-launch-1.0 -q filesrc location=say.wav ! wavparse ! audioconvert ! audioresample ! opusenc ! webmmux ! \
  filesink location=say.webm
run "$F" -i say.webm -o null: speech >say.jsonl
expect_rc 0 speech
heard=$(jq -sr '[.[] | select(.type == "transcript") | .text] | join(" ")' say.jsonl)
hits=0; for w in $sentence; do [[ " $heard " == *" $w "* ]] && hits=$((hits + 1)); done
(( hits * 2 >= 9 )) || fail "speech: heard \"$heard\""
# Each transcript is dated in the media: within the sentence's length (pocketsphinx gives none).
len=$(ffprobe -v error -show_entries format=duration -of csv=p=0 say.webm)
jq -se --argjson len "$len" '[.[] | select(.type == "transcript") | .time] | length > 0 and all(. > 0 and . <= $len + 0.1)' \
  say.jsonl >/dev/null || fail "speech: transcript times $(jq -sc '[.[] | select(.type == "transcript") | .time]' say.jsonl) for $len s"
pass "speech hears $hits of 9 words: \"$heard\", dated within the sentence"

# 9. level: a louder tone reads louder.
for v in 0.05 0.6; do
  gst-launch-1.0 -q audiotestsrc num-buffers=50 volume=$v ! audioconvert ! opusenc ! webmmux ! filesink location=tone$v.webm
  "$F" -i tone$v.webm -o null: level | jq -s '[.[] | select(.type == "level") | .rms[0]] | add / length' >rms$v
done
above "$(cat rms0.6)" "$(echo "$(cat rms0.05) + 15" | bc -l)" || fail "level: $(cat rms0.05) dB and $(cat rms0.6) dB"
pass "level: the quiet tone at $(cat rms0.05) dB, the loud one at $(cat rms0.6) dB"

# volume 0.1 takes 20 dB off; resample and crop, as ffprobe reads them back.
run "$F" -i bars.mkv -o quiet.mkv volume 0.1 resample 16000 crop left=20 top=40 --audio-codec vorbis
expect_rc 0 "volume resample crop"
rms() { "$F" -i "$1" -o null: level | jq -s '[.[] | select(.type == "level") | .rms[0]] | add / length'; }
drop=$(echo "$(rms bars.mkv) - $(rms quiet.mkv)" | bc -l)
within "$(echo "($drop - 20)^2" | bc -l)" 4 || fail "volume 0.1: $drop dB quieter"
[[ $(probe quiet.mkv a:0 codec_name,sample_rate) == "vorbis,16000" ]] || fail "resample: $(probe quiet.mkv a:0 codec_name,sample_rate)"
[[ $(probe quiet.mkv v:0 width,height) == "300,200" ]] || fail "crop: $(probe quiet.mkv v:0 width,height)"
pass "volume 0.1 is $drop dB quieter; resample 16000 gives 16 kHz Vorbis; crop left=20 top=40 gives 300x200"

# 10. Mistakes: an unknown element (2, naming the closest), pads that do not fit (3, naming
# both), a missing plugin (69, naming its package).
run "$F" -i bars.mkv -o null: 'videoflp method=1' 2>err
expect_rc 2 "unknown element"
grep -q "closest is videoflip" err || fail "unknown element: $(cat err)"
run "$F" -i bars.mkv -o null: 'videoflip ! audioconvert' 2>err
expect_rc 3 "pads that do not fit"
grep -q "videoflip0's src pad gives video/x-raw, and audioconvert0's sink pad takes audio/x-raw" err ||
  fail "pads: $(cat err)"
mkdir plugins
for p in /usr/lib/x86_64-linux-gnu/gstreamer-1.0/*.so; do
  [[ $(basename "$p") == libgstzbar.so ]] || ln -s "$p" plugins/
done
GST_REGISTRY=$WORK/registry.bin GST_PLUGIN_SYSTEM_PATH_1_0=$WORK/plugins run "$F" -i qr.webm -o null: qr 2>err
expect_rc 69 "missing zbar"
grep -q "gstreamer1.0-plugins-bad" err || fail "missing zbar: $(cat err)"
pass "mistakes: unknown element 2, pads that do not fit 3, a missing plugin 69 with its package"

# 10b. More mistakes: a sample rate no one can hear (it hung) is 2; --json still gets one object
# when the input is missing (3); display: without a screen leaves the video out with a reason
# (autovideosink fell through to DirectFB, which crashed the process: 139).
run timeout 20 "$F" -i bars.mkv -o null: resample 7 2>err
expect_rc 2 "resample 7"
grep -q "1000 to 384000" err || fail "resample 7: $(cat err)"
run "$F" --json -i missing.webm -o x.webm flip >res.json 2>err
expect_rc 3 "--json, a missing input"
jq -e '.error | test("missing.webm")' res.json >/dev/null || fail "--json, a missing input: '$(cat res.json)'"
run env -u DISPLAY -u WAYLAND_DISPLAY timeout 30 "$F" -i bars.mkv -o display: --events ev-d.jsonl flip 2>err
expect_rc 0 "display: without a screen"
grep -q "no screen" err || fail "display: without a screen: $(cat err)"
pass "resample 7 is 2; --json says why a missing input failed; display: with no screen says so"

# 10d. Options a filter cannot take are refused (volume 2 mute=true exited 0, muting nothing); a
# crop that leaves nothing of the 320x240 picture is 2 in the user's terms (it was 1, "no common
# format"), and the file it would have written is not left behind empty; --video-codec h264 into
# WebM is refused (it gave VP8, silently).
run "$F" -i bars.mkv -o null: volume 2 mute=true 2>err
expect_rc 2 "volume 2 mute=true"
grep -q "volume: takes no KEY=VALUE options, and mute=true" err || fail "volume 2 mute=true: $(cat err)"
run "$F" -i bars.mkv -o null: crop left=-5 2>err
expect_rc 2 "crop left=-5"
run timeout 30 "$F" -i bars.mkv -o cropped.webm crop left=300 right=20 2>err
expect_rc 2 "crop too big"
grep -q "cuts 320 of 320 pixels across" err || fail "crop too big: $(cat err)"
[[ ! -e cropped.webm ]] || fail "crop too big left $(stat -c %s cropped.webm) bytes in cropped.webm"
run "$F" -i bars.mkv -o h264.webm --video-codec h264 flip 2>err
expect_rc 2 "--video-codec h264 into WebM"
grep -q "h264 does not go into webm" err || fail "--video-codec h264 into WebM: $(cat err)"
[[ ! -e h264.webm ]] || fail "--video-codec h264 into WebM left h264.webm"
echo "not a picture" >not.png
run timeout 30 "$F" -i bars.mkv -o null: image not.png 2>err
expect_rc 3 "image not.png"
grep -q "image reads not.png" err || fail "image not.png: the message names no file: $(cat err)"
pass "options a filter does not take, a crop that leaves nothing and H.264 for WebM are 2, and leave no file; a picture that is not one is 3, named"

# 10c. -t on a file is media time (ffmpeg's -t): the first second of the 2 s bars, both streams,
# however fast the filter runs.
run "$F" -q -t 1 -i bars.mkv -o first.mkv flip volume 0.5
expect_rc 0 "-t 1 on a file"
v=$(stream_secs first.mkv v:0); a=$(stream_secs first.mkv a:0)
within "$(echo "($v - 0.93)^2" | bc -l)" 0.005 || fail "-t 1 on a file: video holds $v s"
within "$(echo "($a - 1)^2" | bc -l)" 0.005 || fail "-t 1 on a file: audio holds $a s"
pass "-t 1 on a 2 s file gives its first second ($v s of video at 15 frame/s, $a s of audio)"
# On a stdin left open the end comes from the cut alone: each stream's second link (after the
# filter) ends by the first one's end of stream, and the stop must still come (0, not 7).
run timeout 25 "$F" -q -t 1 -i - -o first-open.mkv flip volume 0.5 < <(cat bars.mkv; sleep 20)
expect_rc 0 "-t 1 on a stdin left open"
v=$(stream_secs first-open.mkv v:0)
within "$(echo "($v - 0.93)^2" | bc -l)" 0.005 || fail "-t 1 on a stdin left open: video holds $v s"
pass "-t 1 on a stdin left open stops with its first second"

# 11. The pipe: a live call, mirrored on its way to a recording.
mkfifo o a
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a -t 5 2>off.err >/dev/null </dev/null & PIDS+=($!)
set +e
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a -t 5 -o - 2>ans.err </dev/null |
  "$F" flip 2>filter.err | "$R" -q - -o piped.webm
st=("${PIPESTATUS[@]}"); set -e
[[ ${st[*]} == "0 0 0" ]] || { show_logs; cat filter.err >&2; fail "pipe: exits ${st[*]}"; }
gst-launch-1.0 -q videotestsrc num-buffers=10 pattern=smpte ! video/x-raw,width=640,height=480 ! \
  videoconvert ! video/x-raw,format=I420 ! matroskamux ! filesink location=call-ref.mkv
ffmpeg -v error -i call-ref.mkv -vf hflip -c:v rawvideo call-hflip.mkv
last() { ffmpeg -v error -sseof -1 -i "$1" -frames:v 1 -s 640x480 -y "$2"; }
last piped.webm piped.png
p_m=$(psnr piped.png call-hflip.mkv); p_s=$(psnr piped.png call-ref.mkv)
above "$p_m" "$(echo "$p_s + 6" | bc -l)" || fail "pipe: PSNR $p_m mirrored, $p_s straight"
n=$(frames piped.webm); (( n > 30 )) || fail "pipe: $n frames"
pass "kms-call -o - | kms-filter flip | kms-record: $n frames, mirrored (PSNR $p_m dB against hflip, $p_s straight)"

# 12. Live input the filter cannot keep up with (a fragment that takes 100 ms a frame, 30 frames
# a second coming): frames are dropped and reported, and the run keeps real time.
start=$(date +%s.%N)
run "$F" -i 'test:video?width=320&height=240' -o null: -t 3 --events drops.jsonl --json \
  'identity sleep-time=100000' >drops.json 2>drops.err
took=$(echo "$(date +%s.%N) - $start" | bc)
expect_rc 0 "live drops"
jq -e '.dropped >= 30 and .videoFrames >= 15 and .videoFrames <= 45' drops.json >/dev/null ||
  fail "live drops: $(cat drops.json)"
jq -se '[.[] | select(.type == "dropped")] | length > 0' drops.jsonl >/dev/null || fail "no dropped events"
grep -q "cannot keep up" drops.err || fail "live drops: no warning: $(cat drops.err)"
within "$took" 5 || fail "live drops: -t 3 took $took s"
pass "live input at 30 frame/s through a 10 frame/s filter: $(jq .dropped drops.json) frames dropped and reported, $took s for -t 3"

# 12b. An analysis that cannot keep up (face-detect on live 4K): the media goes on whole, and the
#      frames the analysis skipped are counted (they were not).
run "$F" -i 'test:video?width=3840&height=2160' -o null: -t 3 --events fdrops.jsonl --json face-detect \
  >fdrops.json 2>fdrops.err
expect_rc 0 "live analysis drops"
jq -e '.dropped >= 1 and .videoFrames >= 80' fdrops.json >/dev/null || fail "live analysis drops: $(cat fdrops.json)"
jq -se '[.[] | select(.type == "dropped")] | length > 0' fdrops.jsonl >/dev/null || fail "live analysis: no dropped events"
pass "face-detect on live 4K: all $(jq .videoFrames fdrops.json) frames go out, $(jq .dropped fdrops.json) skipped by the analysis and reported"

# 13. --video-codec: H.264 out of a VP8 input.
run "$F" -i bars.mkv -o h264.mkv --video-codec h264 flip
expect_rc 0 "--video-codec h264"
[[ $(probe h264.mkv v:0 codec_name) == h264 && $(frames h264.mkv) == 30 ]] || fail "--video-codec h264"
pass "--video-codec h264 encodes the filtered VP8 as H.264"

# 14. chroma: a green backdrop with a red square becomes the blue picture behind the red square.
gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=solid-color foreground-color=0xff0000ff ! \
  video/x-raw,width=64,height=64 ! pngenc ! filesink location=blue.png
gst-launch-1.0 -q compositor name=c sink_1::xpos=120 sink_1::ypos=80 ! videoconvert ! vp8enc deadline=1 \
  target-bitrate=1000000 ! webmmux ! filesink location=green.webm \
  videotestsrc num-buffers=30 pattern=solid-color foreground-color=0xff00ff00 ! video/x-raw,width=320,height=240,framerate=15/1 ! c. \
  videotestsrc num-buffers=30 pattern=solid-color foreground-color=0xffff0000 ! video/x-raw,width=80,height=80,framerate=15/1 ! c.
run "$F" -i green.webm -o keyed.webm chroma green --background blue.png
expect_rc 0 chroma
[[ $(frames keyed.webm) == 30 ]] || fail "chroma: $(frames keyed.webm) frames, not 30"
ffmpeg -v error -i keyed.webm -ss 1 -frames:v 1 -f rawvideo -pix_fmt rgb24 keyed.rgb
read -r corner centre < <(python3 -c "
d = open('keyed.rgb', 'rb').read()
px = lambda x, y: d[(y * 320 + x) * 3:(y * 320 + x) * 3 + 3]
print(','.join(map(str, px(10, 10))), ','.join(map(str, px(160, 120))))")
IFS=, read -r r g b <<<"$corner"; (( b > 200 && g < 60 && r < 60 )) || fail "chroma: the corner is $corner, not blue"
IFS=, read -r r g b <<<"$centre"; (( r > 200 && g < 60 && b < 60 )) || fail "chroma: the centre is $centre, not red"
pass "chroma green puts the blue picture behind the red square (corner $corner, centre $centre), 30 frames in, 30 out"

# 15. flip v and rotate 180 match ffmpeg's vflip and its hflip,vflip; text and clock change the
#     picture only where they write (valign=top: the top band, not the bottom half).
run "$F" -i bars.mkv -o flipv.mkv flip v
expect_rc 0 "flip v"
p_v=$(psnr flipv.mkv ref-vflip.mkv)
above "$p_v" 30 || fail "flip v: PSNR $p_v against vflip"
ffmpeg -v error -i bars.mkv -vf hflip,vflip -c:v rawvideo -an ref-180.mkv
run "$F" -i bars.mkv -o r180.mkv rotate 180
expect_rc 0 "rotate 180"
p_r=$(psnr r180.mkv ref-180.mkv)
above "$p_r" 30 || fail "rotate 180: PSNR $p_r against hflip,vflip"
band() {  # band FILE CROP -> PSNR of that region against the unfiltered run (same.mkv)
  ffmpeg -v info -nostats -i "$1" -i same.mkv -lavfi "[0:v]crop=$2[a];[1:v]crop=$2[b];[a][b]psnr" -f null - 2>&1 |
    sed -n 's/.*average:\([0-9.inf]*\).*/\1/p' | sed 's/inf/99/'
}
for f in "text KMS-TEST valign=top" "clock valign=top"; do
  run "$F" -i bars.mkv -o ov.mkv $f
  expect_rc 0 "$f"
  top=$(band ov.mkv 320:60:0:0); bottom=$(band ov.mkv 320:120:0:120)
  # The text is small, so the band as a whole still looks alike; what counts is that the top
  # differs well beyond the codec's noise and the bottom does not.
  above "$bottom" 35 && above "$(echo "$bottom - $top" | bc -l)" 5 ||
    fail "$f: PSNR top band $top, bottom half $bottom"
done
pass "flip v (PSNR $p_v) and rotate 180 ($p_r) match ffmpeg; text and clock write in the top band only"
