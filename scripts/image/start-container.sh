#!/usr/bin/env bash
# Starts IMAGE as the container "earshot" with the commands the README shows, after copying the
# ggml-*.bin files of MODEL_DIR into the volume earshot-models.
#
# Usage: API_KEY=KEY start-container.sh IMAGE MODEL_DIR
# Runs `docker`; the local proof puts a `docker` that runs podman first on PATH.
set -euo pipefail

IMAGE="${1:?usage: API_KEY=KEY start-container.sh IMAGE MODEL_DIR}"
MODEL_DIR="${2:?usage: API_KEY=KEY start-container.sh IMAGE MODEL_DIR}"
: "${API_KEY:?set API_KEY to the key the server must require}"

cd "$MODEL_DIR"
shopt -s nullglob
model_files=(ggml-*.bin)
if ((${#model_files[@]} == 0)); then
  echo "error: no ggml-*.bin model file in $MODEL_DIR" >&2
  exit 1
fi

# The README's lines, with the image name and model files as variables. The first `docker run`
# creates the volume when it does not exist yet.
docker run --rm -v earshot-models:/models -v "$PWD:/import:ro" --entrypoint cp "$IMAGE" \
  "${model_files[@]/#//import/}" /models/
docker run -d --name earshot --network host -e HOST=127.0.0.1 -e API_KEY="$API_KEY" \
  -v earshot-models:/models --stop-timeout 40 "$IMAGE"
