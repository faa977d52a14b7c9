#!/usr/bin/env bash
# A real HLS title for the samples and the browser test: SECONDS seconds of
# H.264 video (a test pattern with a running clock) in 720p and 1080p, and
# AAC audio (a tone) as its own rendition, cut in 2-second MPEG-TS segments
# named seg_001.ts..., made with Debian's ffmpeg. The layout is the one
# examples/master.m3u8 points at:
#   OUT/720p/index.m3u8  OUT/1080p/index.m3u8  OUT/audio/en/index.m3u8
# With --dash, the same title as DASH (examples/manifest.mpd's layout): one
# MPD, a video (720p) and an audio adaptation set, fragmented MP4 in
# 2-second segments named by $Number$ from a SegmentTemplate:
#   OUT/manifest.mpd  OUT/init-0.m4s  OUT/chunk-0-00001.m4s ...  (1: audio)
# Usage: scripts/sample_title.sh [--dash] OUT [SECONDS]
set -euo pipefail
dash=false
[ "${1:-}" = --dash ] && { dash=true; shift; }
out=$1; secs=${2:-8}
command -v ffmpeg >/dev/null || { echo "sample_title: ffmpeg is missing (apt-get install ffmpeg)" >&2; exit 1; }
if $dash; then
  mkdir -p "$out"
  ffmpeg -loglevel error -nostdin -y -f lavfi -i "testsrc2=size=1280x720:rate=25" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t "$secs" \
    -map 0:v -map 1:a -c:v libx264 -preset ultrafast -profile:v high -level 3.1 -pix_fmt yuv420p \
    -g 50 -keyint_min 50 -sc_threshold 0 -b:v 1800k -maxrate 1800k -bufsize 3600k -c:a aac -b:a 96k -ac 2 \
    -f dash -seg_duration 2 -use_template 1 -use_timeline 0 -adaptation_sets "id=0,streams=v id=1,streams=a" \
    -init_seg_name 'init-$RepresentationID$.m4s' -media_seg_name 'chunk-$RepresentationID$-$Number%05d$.m4s' \
    "$out/manifest.mpd"
  exit 0
fi
hls=(-f hls -hls_time 2 -hls_playlist_type vod -start_number 1 -hls_flags independent_segments)
video() { # name size level kbit/s (under the master's BANDWIDTH)
  mkdir -p "$out/$1"
  ffmpeg -loglevel error -nostdin -y -f lavfi -i "testsrc2=size=$2:rate=25" -t "$secs" \
    -c:v libx264 -preset ultrafast -profile:v high -level "$3" -pix_fmt yuv420p -g 50 -keyint_min 50 \
    -b:v "${4}k" -maxrate "${4}k" -bufsize "$(( $4 * 2 ))k" \
    -sc_threshold 0 -an "${hls[@]}" -hls_segment_filename "$out/$1/seg_%03d.ts" "$out/$1/index.m3u8"
}
video 720p 1280x720 3.1 1800 &
video 1080p 1920x1080 4.0 3600 &
mkdir -p "$out/audio/en"
ffmpeg -loglevel error -nostdin -y -f lavfi -i "sine=frequency=440:sample_rate=48000" -t "$secs" \
  -c:a aac -b:a 96k -ac 2 -vn "${hls[@]}" -hls_segment_filename "$out/audio/en/seg_%03d.ts" \
  "$out/audio/en/index.m3u8"
wait %1 && wait %2
