"""The shipped Prometheus alerting rules: valid for promtool, and about metrics the service
really exports."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from loreweave.api import create_app
from loreweave.db import Database
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.queue.notify import NullNotifier

from .pipeline_support import make_app, make_world

RULES = Path(__file__).parent.parent / "deploy" / "prometheus" / "loreweave-rules.yml"


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool (Debian: prometheus) must be installed under CI=true")
        pytest.skip("promtool not installed")
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout


def test_every_rule_names_metrics_the_service_exports(database: Database, tmp_path: Path) -> None:
    scripted = ScriptedChatModel()
    scripted.add("Hi.", prompt="chat", repeat=True)
    lw = make_app(database, tmp_path, scripted, notifier=NullNotifier())
    _, session_id, _ = make_world(database)
    with TestClient(create_app(lw)) as client:
        client.post(f"/api/sessions/{session_id}/turns", json={"message": "Hello."})
        exported = client.get("/metrics").text
    names = set()  # what a family's samples are called, from its declaration
    for name, kind in re.findall(r"^# TYPE (loreweave_\w+) (\w+)$", exported, re.M):
        suffixes = {"counter": ["", "_total"], "histogram": ["_bucket", "_sum", "_count"]}
        names |= {name + suffix for suffix in suffixes.get(kind, [""])}
    rules = [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]
    for rule in rules:
        for name in re.findall(r"\bloreweave_\w+", rule["expr"]):
            assert name in names, f"{rule['alert']} uses {name}, which /metrics does not export"
