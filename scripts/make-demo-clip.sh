#!/bin/sh
# make-demo-clip.sh: builds Spillway's own demo clip from ffmpeg's test sources.
#
# Output (committed, embedded by plugins/streaming/fileloop with //go:embed):
#   plugins/streaming/fileloop/clip/demo.ivf  VP8, 640x360, 30 fps, 10 s (300 frames),
#                                             ~600 kbit/s CBR, a keyframe every 30 frames,
#                                             realtime deadline, error resilient, no alt-ref
#                                             (every IVF frame is a shown frame)
#   plugins/streaming/fileloop/clip/demo.ogg  Opus, 48 kHz stereo, 20 ms frames, ~64 kbit/s:
#                                             a 440/660 Hz beep of 150 ms at each second,
#                                             in step with the seconds on the video
#
# The picture is testsrc2 (moving bar, bouncing squares, a timestamp and frame counter
# in the top-left corner) with a large frame number and title drawn on top, so a
# screenshot shows that it plays and where it is in the loop.
#
# Usage: scripts/make-demo-clip.sh [outdir]   (run from anywhere; needs root or sudo only
# to install ffmpeg and fonts-dejavu-core when they are missing)
#
# Reproducible: fixed sources, one encoder thread, fixed settings; output bytes depend
# only on the ffmpeg/libvpx/libopus versions (made with Debian 12's ffmpeg 5.1).
# After regenerating, run: go test ./plugins/streaming/fileloop/...
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$here/plugins/streaming/fileloop/clip"}
font=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf

install_pkgs() {
	if [ "$(id -u)" -eq 0 ]; then
		apt-get update && apt-get install -y "$@"
	else
		sudo apt-get update && sudo apt-get install -y "$@"
	fi
}
command -v ffmpeg >/dev/null 2>&1 || install_pkgs ffmpeg
[ -f "$font" ] || install_pkgs fonts-dejavu-core

mkdir -p "$out"

# Video. -g/-keyint_min 30: a keyframe each second, and only then (a viewer that joins
# waits at most 1 s, and the file loop cannot make one on demand). -lag-in-frames 0 and
# -auto-alt-ref 0: no hidden alt-ref frames, one IVF frame per displayed frame.
# -error-resilient 1: decoders recover after a lost packet. CBR with a small buffer and
# -max-intra-rate keeps keyframes from bursting far above the average.
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i "testsrc2=size=640x360:rate=30:duration=10" \
	-vf "drawtext=fontfile=$font:text='Spillway demo':fontsize=36:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=8:x=(w-tw)/2:y=h-th-70,\
drawtext=fontfile=$font:text='frame %{frame_num}':fontsize=48:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=8:x=(w-tw)/2:y=h-th-14" \
	-c:v libvpx -threads 1 -deadline realtime -cpu-used 8 \
	-b:v 600k -minrate 600k -maxrate 600k -bufsize 300k -max-intra-rate 800 \
	-g 30 -keyint_min 30 -lag-in-frames 0 -auto-alt-ref 0 -error-resilient 1 \
	-pix_fmt yuv420p -frames:v 300 -bitexact -f ivf "$out/demo.ivf"

# Audio. -frame_duration 20 gives 20 ms packets (960 samples at 48 kHz). The encoder adds
# 312 samples of pre-skip, so 479688 samples (9.9935 s) make exactly 500 packets: 10.000 s,
# the length of the video, so audio and video stay in step across loops.
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i "aevalsrc=0.4*sin(2*PI*440*t)*lt(mod(t\,1)\,0.15)|0.4*sin(2*PI*660*t)*lt(mod(t\,1)\,0.15):sample_rate=48000:channel_layout=stereo:duration=9.9935" \
	-c:a libopus -b:a 64k -vbr off -frame_duration 20 -application audio \
	-ac 2 -ar 48000 -bitexact -f ogg "$out/demo.ogg"

ls -l "$out/demo.ivf" "$out/demo.ogg"
