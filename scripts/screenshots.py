"""Take the README's screenshots of the tenant portal and the fleet console, again.

    .venv/bin/python scripts/screenshots.py [--out docs]

Self-contained: a throwaway SQLite database in a temporary folder, seeded with a demo tenant (a
QR code waiting, then linked, with messages and a chat taken over) and a small fleet with tenants
in trouble; `manage.py runserver` on a free port serves it, and headless system Chromium
(pyppeteer) signs in as the tenant's member and as an operator. Nothing else is touched: no fleet
agent, no worker, no simulator. Redis is used only as the cache (REDIS_URL, default db 13).
The PNGs are reduced to a small palette so they stay small in the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
MEMBER, MEMBER_PASSWORD = "owner@demo.example", "portal-demo-pass-1"
OPERATOR, OPERATOR_PASSWORD = "operator", "operator-demo-pass-1"
WIDTH, HEIGHT = 1200, 860


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(folder: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{folder / 'screenshots.sqlite3'}",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13"),
        "FLOWHQ_DOTENV": "0",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "PORTAL_INTERNAL_KEY": secrets.token_urlsafe(16),
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "FLOWHQ_VAR_DIR": str(folder),
        "PORTAL_SSE_POLL_MS": "300",
        "CONSOLE_REFRESH_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }


def seed() -> int:
    """The data the screenshots show; returns the demo tenant's id."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from tenants import services
    from tenants.models import MatchKind, MessageLog, ReplyTemplate, Tenant, WhatsAppSession
    from tenants.states import SessionState, TenantStatus
    from tenants.takeover import chat_pause_renew
    from workers.bot.qr import qr_data_uri
    from workers.models import FleetHost, WorkerProcess
    from workers.states import DesiredState, WorkerStatus

    now = timezone.now()
    users = get_user_model()
    users.objects.create_superuser(username=OPERATOR, password=OPERATOR_PASSWORD, email="operator@example.com")
    users.objects.create_user(username=MEMBER, email=MEMBER, password=MEMBER_PASSWORD)

    for name, capacity in [("web-1", 50), ("web-2", 50)]:
        FleetHost.objects.create(name=name, capacity=capacity, heartbeat_at=now,
                                 stale_after=now + timedelta(days=1))
    FleetHost.objects.create(name="web-3", capacity=50, heartbeat_at=now - timedelta(minutes=9),
                             stale_after=now - timedelta(minutes=8))

    demo = services.tenant_create(name="Demo Café", slug="demo")
    for match, pattern, body, priority in [
        (MatchKind.EXACT, "menu", "Today: espresso 2.50, flat white 3.20, croissant 2.00.", 10),
        (MatchKind.KEYWORD, "hours", "We are open 7:00-18:00, Monday to Saturday.", 5),
        (MatchKind.DEFAULT, "", "Hi {name}! This is {tenant}. Reply 'menu' or ask about our hours.", 0),
    ]:
        ReplyTemplate.objects.create(tenant=demo, match=match, pattern=pattern, body=body, priority=priority)
    services.membership_add(tenant=demo, email=MEMBER)
    WorkerProcess.objects.filter(tenant=demo).update(status=WorkerStatus.RUNNING, desired_state=DesiredState.RUNNING,
                                                     host="web-1", heartbeat_at=now, started_at=now,
                                                     stale_after=now + timedelta(days=1))
    WhatsAppSession.objects.filter(tenant=demo).update(state=SessionState.QR_READY, qr_issued_at=now,
                                                       qr=qr_data_uri("2@FlowHQ-screenshot,not-a-real-code"))
    Tenant.objects.filter(pk=demo.pk).update(status=TenantStatus.STARTING, status_reason="waiting for the QR scan")

    conversation = [
        ("4917000000001", "in", "customer", "menu", "replied", 9),
        ("4917000000001", "out", "bot", "Today: espresso 2.50, flat white 3.20, croissant 2.00.", "sent", 9),
        ("4917000000002", "in", "customer", "are you open on sunday? what are your hours", "replied", 6),
        ("4917000000002", "out", "bot", "We are open 7:00-18:00, Monday to Saturday.", "sent", 6),
        ("4917000000003", "in", "customer", "I'd like to book the back room for 12 people", "replied", 3),
        ("4917000000003", "out", "phone", "Hi Sam, Maria here: Friday at 7 works, see you then!", "sent", 2),
        ("4917000000003", "in", "customer", "perfect, thanks!", "ignored", 1),
    ]
    for i, (number, direction, source, body, status, minutes_ago) in enumerate(conversation):
        entry = MessageLog.objects.create(tenant=demo, message_id=f"SHOT{i}", chat=f"{number}@c.us",
                                          direction=direction, source=source, body=body, status=status)
        MessageLog.objects.filter(pk=entry.pk).update(created_at=now - timedelta(minutes=minutes_ago, seconds=i))
    chat_pause_renew(tenant_id=demo.pk, chat="4917000000003@c.us", until=now + timedelta(minutes=28))

    # The fleet: tenants running fine, and some in trouble.
    for i in range(6):
        fine = services.tenant_create(name=f"Shop {i + 1}")
        WorkerProcess.objects.filter(tenant=fine).update(
            status=WorkerStatus.RUNNING, desired_state=DesiredState.RUNNING, host=f"web-{i % 2 + 1}",
            heartbeat_at=now, stale_after=now + timedelta(days=1))
        WhatsAppSession.objects.filter(tenant=fine).update(state=SessionState.CONNECTED, phone=f"4915000000{i}")
        for j in range(4 + 3 * i):
            entry = MessageLog.objects.create(tenant=fine, message_id=f"F{i}-{j}", chat=f"49170000{j:05d}@c.us",
                                              direction="in" if j % 2 else "out", body="hello", status="replied")
            MessageLog.objects.filter(pk=entry.pk).update(created_at=now - timedelta(seconds=40 * j))
    troubles: list[tuple[str, dict[str, Any], str | None]] = [
        ("Bakery Bruns", {"status": WorkerStatus.STARTING, "consecutive_failures": 4,
                          "last_error": "exited with code 1 after 3 s"}, None),
        ("Kiosk Kim", {"status": WorkerStatus.ERROR, "last_error": "WhatsApp Web did not load within 60 s"}, None),
        ("Florist Fenna", {"status": WorkerStatus.RUNNING}, SessionState.QR_TIMEOUT),
        ("Garage Gül", {"status": WorkerStatus.RUNNING}, SessionState.LOGGED_OUT),
    ]
    for name, worker, session in troubles:
        tenant = services.tenant_create(name=name)
        WorkerProcess.objects.filter(tenant=tenant).update(desired_state=DesiredState.RUNNING, host="web-2",
                                                           heartbeat_at=now - timedelta(minutes=2),
                                                           stale_after=now + timedelta(days=1), **worker)
        if session:
            WhatsAppSession.objects.filter(tenant=tenant).update(state=session)
    return demo.pk


def quantized(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=96, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


async def shoot(base: str, out: Path, tenant_id: int) -> list[Path]:
    from pyppeteer import launch

    from flowhq.chromium import find_chromium
    from tenants.models import Tenant, WhatsAppSession
    from tenants.states import SessionState, TenantStatus
    from workers.bot.browser import chromium_args

    profile = tempfile.mkdtemp(prefix="flowhq-shots-")
    browser = await launch(executablePath=find_chromium(), userDataDir=profile, headless=True,
                           args=[*chromium_args(), f"--window-size={WIDTH},{HEIGHT}"],
                           handleSIGINT=False, handleSIGTERM=False, handleSIGHUP=False, autoClose=False)
    taken: list[Path] = []
    try:
        page = await browser.newPage()
        await page.setViewport({"width": WIDTH, "height": HEIGHT})

        async def save(name: str) -> None:
            path = out / name
            await page.screenshot({"path": str(path)})
            quantized(path)
            taken.append(path)

        await page.goto(f"{base}/portal/sign-in/")
        await save("portal-sign-in.png")
        await page.type("#id_username", MEMBER)
        await page.type("#id_password", MEMBER_PASSWORD)
        await asyncio.gather(page.waitForNavigation(), page.click('#sign-in button[type="submit"]'))
        await page.waitForSelector('#portal-qr .qr-box:not([hidden]) img[src^="data:image/png"]')
        await save("portal-qr.png")

        # The phone scans: the page follows by itself (the event stream), no reload.
        await asyncio.to_thread(_linked, tenant_id, WhatsAppSession, Tenant, SessionState, TenantStatus)
        await page.waitForSelector('#link-state[data-state="CONNECTED"]', {"timeout": 20000})
        await page.waitForSelector('#bot-state[data-answering="yes"]', {"timeout": 20000})
        await save("portal.png")

        await page.goto(f"{base}/portal/messages/")
        await save("portal-messages.png")

        await page.goto(f"{base}/admin/login/?next=/console/")
        await page.type("#id_username", OPERATOR)
        await page.type("#id_password", OPERATOR_PASSWORD)
        await asyncio.gather(page.waitForNavigation(), page.click('input[type="submit"]'))
        await page.waitForSelector("#attention")
        await save("console.png")
    finally:
        await browser.close()
        if browser.process is not None and browser.process.poll() is None:
            browser.process.kill()
            browser.process.wait(10)
        shutil.rmtree(profile, ignore_errors=True)
    return taken


def _linked(tenant_id: int, session_model: Any, tenant_model: Any, states: Any, tenant_states: Any) -> None:
    from django.utils import timezone

    session_model.objects.filter(tenant_id=tenant_id).update(
        state=states.CONNECTED, qr="", phone="4915100000001", last_seen_at=timezone.now(), updated_at=timezone.now())
    tenant_model.objects.filter(pk=tenant_id).update(status=tenant_states.RUNNING, status_reason="linked",
                                                     updated_at=timezone.now())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="Where the PNGs go [docs/].")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="flowhq-screenshots-") as tmp:
        env = environment(Path(tmp))
        os.environ.update(env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "flowhq.settings"
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        tenant_id = seed()

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if requests.get(f"{base}/healthz", timeout=2).ok:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the web server did not start")
                time.sleep(0.3)
            taken = asyncio.run(shoot(base, args.out, tenant_id))
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    for path in taken:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
