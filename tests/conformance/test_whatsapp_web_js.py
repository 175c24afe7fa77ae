"""The simulator's conformance test: unmodified whatsapp-web.js (pinned in package-lock.json,
installed by `make test` with `npm ci`) drives the system Chromium against the simulator.

whatsapp-web.js navigates to https://web.whatsapp.com/ itself; Chromium's `--host-resolver-rules`
sends that name to the simulator's TLS listener (a certificate made here, accepted with
`--ignore-certificate-errors`). If whatsapp-web.js cannot link, receive, reply, send and see a
logout on this page, the simulator does not offer what the real page offers, and nothing the bot
does against it proves anything. The steps are in `conformance.js`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from flowhq.chromium import find_chromium
from tests.harness import SimulatorProcess, free_port, processes_naming, self_signed_cert
from workers.bot.browser import launch_options

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
PHONE = "15550002222"
CUSTOMER = "15559993333"
EXCHANGE = ["message", "reply", "sendMessage"]
STEPS = ["qr", "ready", *EXCHANGE, "message_create", "ready again", *EXCHANGE, "disconnected", "qr after logout",
         "done"]


def bot_chromium_args() -> list[str]:
    """The bot's flags, less its user agent (whatsapp-web.js sets its own)."""
    return [arg for arg in launch_options()["args"] if not arg.startswith(("--user-agent=", "--no-sandbox"))]


def kill_leftovers(data_dir: Path) -> list[int]:
    """Chromium processes still naming the run's folder: killed, and reported."""
    pids = processes_naming(data_dir)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def test_whatsapp_web_js_links_receives_replies_sends_and_sees_the_logout(tmp_path):
    node = shutil.which("node")
    assert node, "node is not on PATH (make test installs it with apt)"
    assert (HERE / "node_modules" / "whatsapp-web.js").is_dir(), (
        "whatsapp-web.js is not installed: make test runs `npm ci` in tests/conformance"
    )
    cert, key = self_signed_cert(tmp_path)
    tls_port = free_port()
    sim = SimulatorProcess(
        tmp_path / "simulator.log", qr_rotate_ms=5000, ping_interval_ms=500, ping_timeout_ms=2500, sync_delay_ms=300,
        extra_args=("--tls-port", str(tls_port), "--tls-cert", str(cert), "--tls-key", str(key)),
    ).start()
    data_dir = tmp_path / "wwebjs"
    env = {
        **os.environ, "SIM_URL": sim.url, "SIM_TLS_PORT": str(tls_port), "CHROMIUM": find_chromium(),
        "DATA_DIR": str(data_dir), "PHONE": PHONE, "CUSTOMER": CUSTOMER, "PUPPETEER_SKIP_DOWNLOAD": "1",
        # The bot's Chromium flags, so that they are proven against this client too.
        "BOT_CHROMIUM_ARGS": json.dumps(bot_chromium_args()),
    }
    try:
        run = subprocess.run([node, "conformance.js"], cwd=HERE, env=env, capture_output=True, text=True,
                             timeout=180, check=False)
    finally:
        sim.stop()
        leftovers = kill_leftovers(data_dir)
    steps = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    explain = (f"exit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr[-4000:]}\n"
               f"simulator:\n{(tmp_path / 'simulator.log').read_text()[-4000:]}")
    assert run.returncode == 0, explain
    assert [s["step"] for s in steps] == STEPS, explain
    by_step = {s["step"]: s for s in steps}
    assert by_step["qr"] == {"step": "qr", "fields": 5, "platform": "1"}
    assert by_step["ready"]["wid"] == f"{PHONE}@c.us"
    assert by_step["message"]["from"] == f"{CUSTOMER}@c.us"
    assert by_step["message"]["fromMe"] is False
    assert by_step["reply"]["outbox"]["to"] == CUSTOMER
    assert by_step["message_create"] == {"step": "message_create", "fromMe": True, "to": f"{CUSTOMER}@c.us",
                                         "message": False}
    assert by_step["disconnected"]["reason"] == "LOGOUT"
    assert not leftovers, f"Chromium processes were left running: {leftovers}"
