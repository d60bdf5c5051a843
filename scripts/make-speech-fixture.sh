#!/usr/bin/env bash
# Synthesizes test/fixtures/speech-en.wav, one clear English sentence of about 5.5 s as 16 kHz
# mono 16-bit PCM (the rate whisper.cpp works at), and writes the sentence to speech-en.txt
# beside it. The outputs are committed, so tests need no speech synthesizer.
#
# Needs espeak-ng and sox. espeak-ng's voices differ slightly between versions, so a rerun
# elsewhere may change the audio bytes but not the sentence.
set -euo pipefail

fixture_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../test/fixtures" && pwd)"
sentence="The quick brown fox jumps over the lazy dog, and then it runs back home."
# Words per minute, down from espeak-ng's default of 175, so the sentence lasts about 5.5 s.
words_per_minute=150

for tool in espeak-ng sox; do
  if ! command -v "$tool" >/dev/null; then
    echo "error: $tool not found. Install it (Debian: apt-get install $tool)." >&2
    exit 1
  fi
done

work_dir="$(mktemp -d)"
trap 'rm -rf "$work_dir"' EXIT

espeak-ng -v en-us -s "$words_per_minute" -w "$work_dir/voice.wav" "$sentence"
# -D: no dither, so reruns give the same bytes (dither adds random noise).
sox -D "$work_dir/voice.wav" -r 16000 -c 1 -b 16 -e signed-integer "$fixture_dir/speech-en.wav"
printf '%s\n' "$sentence" >"$fixture_dir/speech-en.txt"

duration="$(soxi -D "$fixture_dir/speech-en.wav")"
echo "wrote $fixture_dir/speech-en.wav ($duration s) and speech-en.txt"
