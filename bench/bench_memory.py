"""Memory per linked tenant's Chromium, the flags before issue 12 against today's, in one run.

For each flag set, N = 1, 4, 8 Chromiums (one profile on disk each, as a tenant has) are
launched, each linked to the simulator as its own phone, and left idle; at each N it prints
the private memory (summed USS of every Chromium tree), PSS and the drop of the host's
MemAvailable since before the first launch, and the marginal private memory per tenant
(the slope from N = 1). Only the browser: the tenant worker's Python (~80 MB, the same with
either flag set) is not in these figures. Also prints the Chromium processes of one browser
(type and the --disable-features its renderers really got).

    .venv/bin/python bench/bench_memory.py [--counts 1,4,8] [--settle 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import linked_chromium, simulator, stop

# workers/bot/browser.py FLAGS as they were before issue 12, launched with pyppeteer's defaults.
OLD_FLAGS = [
    "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-extensions", "--disable-breakpad", "--disable-crash-reporter", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater",
    "--metrics-recording-only", "--no-pings", "--mute-audio", "--password-store=basic", "--use-mock-keychain",
    "--window-size=1280,800",
]


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def process_kind(cmdline: list[str]) -> str:
    kind = next((a.split("=", 1)[1] for a in cmdline if a.startswith("--type=")), "browser")
    sub = next((a.split("=", 1)[1] for a in cmdline if a.startswith("--utility-sub-type=")), "")
    extra = " (extension)" if "--extension-process" in cmdline else ""
    return f"{kind} {sub}".strip() + extra


def describe(pid: int) -> list[str]:
    import psutil

    from workers.bot.browser import applied_disabled_features

    lines = []
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            cmdline, uss = proc.cmdline(), proc.memory_full_info().uss / 2**20
        except psutil.Error:
            continue
        features = ",".join(applied_disabled_features(cmdline)) if "--type=renderer" in cmdline else ""
        lines.append(f"      {process_kind(cmdline):<44} USS {uss:5.0f} MB  {features}")
    return lines


async def measure(label: str, options: dict[str, Any], sim_url: str, tmp: Path, counts: list[int], settle: float,
                  phone_base: int) -> tuple[list[tuple[int, float, float, float]], list[str]]:
    from workers.process_memory import tree_memory

    baseline = mem_available_mb()
    browsers: list[Any] = []
    rows = []
    shown: list[str] = []
    try:
        for n in range(1, max(counts) + 1):
            browsers.append(await linked_chromium(sim_url, tmp / f"{label}-{n}", str(phone_base + n), options))
            if n in counts:
                await asyncio.sleep(settle)
                used = [tree_memory(b.process.pid) for b in browsers]
                rows.append((n, sum(u.private_mb for u in used), sum(u.pss_mb for u in used),
                             baseline - mem_available_mb()))
                if n == 1:
                    shown = describe(browsers[0].process.pid)
    finally:
        for browser in browsers:
            try:
                await asyncio.wait_for(browser.close(), 10)
            except Exception:
                browser.process.kill()
            browser.process.wait()
    return rows, shown


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", default="1,4,8")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds idle before each sample")
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.counts.split(",")})
    import os

    os.environ.update(DJANGO_SETTINGS_MODULE="flowhq.settings", FLOWHQ_DOTENV="0", LOG_LEVEL="WARNING",
                      SECRET_KEY="bench-secret-key-" + "x" * 40, PORTAL_INTERNAL_KEY="bench-portal-key")
    import django

    django.setup()
    from django.conf import settings

    from workers.bot.browser import launch_options

    old = {"args": OLD_FLAGS if settings.CHROMIUM_SANDBOX else [*OLD_FLAGS, "--no-sandbox"]}
    results = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        sim, sim_url = simulator(tmp)
        try:
            for base, (label, options) in enumerate((("before", old), ("after", launch_options()))):
                began = time.monotonic()
                results[label] = (*asyncio.run(measure(label, options, sim_url, tmp, counts, args.settle,
                                                       4915100001000 + 100 * base)), time.monotonic() - began)
        finally:
            stop(sim)
    print("memory: idle linked Chromiums on the simulator (the browser only; the worker's Python is not here)")
    print("  flags   N  private (USS) MB  per tenant  PSS MB  MemAvailable drop MB")
    for label, (rows, _, seconds) in results.items():
        for n, private, pss, drop in rows:
            print(f"  {label:<7}{n:2}  {private:16.0f}  {private / n:10.0f}  {pss:6.0f}  {drop:20.0f}")
        (n1, p1, s1, d1), (nn, pn, sn, dn) = rows[0], rows[-1]
        if nn > n1:
            print(f"  {label:<7}marginal per tenant from N={n1} to N={nn}: private {(pn - p1) / (nn - n1):.0f} MB, "
                  f"PSS {(sn - s1) / (nn - n1):.0f} MB, MemAvailable {(dn - d1) / (nn - n1):.0f} MB  ({seconds:.0f} s)")
    before, after = results["before"][0], results["after"][0]
    for (n, p_old, s_old, _), (_, p_new, s_new, _) in zip(before, after, strict=True):
        print(f"  after / before at N={n}: private {p_new / p_old:.2f}, PSS {s_new / s_old:.2f}")
    for label, (_, shown, _) in results.items():
        print(f"  one browser's processes, {label} (renderers: the --disable-features that applies)")
        print("\n".join(shown))


if __name__ == "__main__":
    main()
