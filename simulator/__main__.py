"""`python -m simulator`: serve the simulator until SIGTERM or SIGINT.

Every option can also come from the environment, so Procfile and tests configure it the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from simulator.server import SimConfig, create_app
from simulator.state import QR_REFS_PER_BATCH

log = logging.getLogger("simulator")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line over environment over defaults."""
    parser = argparse.ArgumentParser(prog="python -m simulator", description="WhatsApp Web simulator")
    parser.add_argument("--host", default="127.0.0.1")
    # String defaults go through `type` too, so a bad environment value is a usage error.
    env = os.environ.get
    parser.add_argument(
        "--port",
        type=int,
        default=env("SIMULATOR_PORT", "8100"),
        help="0 picks a free port [$SIMULATOR_PORT]",
    )
    parser.add_argument("--qr-rotate-ms", type=int, default=env("SIM_QR_ROTATE_MS", "20000"))
    parser.add_argument("--qr-refs-per-batch", type=int, default=env("SIM_QR_REFS_PER_BATCH", str(QR_REFS_PER_BATCH)),
                        help="refs shown before the page goes UNPAIRED_IDLE [$SIM_QR_REFS_PER_BATCH]")
    parser.add_argument("--ping-interval-ms", type=int, default=env("SIM_PING_INTERVAL_MS", "2000"))
    parser.add_argument("--ping-timeout-ms", type=int, default=env("SIM_PING_TIMEOUT_MS", "6000"))
    parser.add_argument("--sync-delay-ms", type=int, default=env("SIM_SYNC_DELAY_MS", "500"),
                        help="time from CONNECTED to Socket.hasSynced at least [$SIM_SYNC_DELAY_MS]")
    parser.add_argument("--wa-version", default=env("SIM_WA_VERSION", SimConfig.wa_version),
                        help="window.Debug.VERSION [$SIM_WA_VERSION]")
    parser.add_argument("--without-module", action="append", metavar="NAME",
                        default=[m for m in env("SIM_WITHOUT_MODULES", "").split(",") if m],
                        help="leave this module out of the page (repeatable) [$SIM_WITHOUT_MODULES, comma-separated]")
    parser.add_argument("--tls-port", type=int, default=None,
                        help="also serve HTTPS here (with --tls-cert/--tls-key), e.g. as web.whatsapp.com")
    parser.add_argument("--tls-cert", type=Path, default=None)
    parser.add_argument("--tls-key", type=Path, default=None)
    parser.add_argument(
        "--state-file",
        type=Path,
        default=Path(os.environ["SIM_STATE_FILE"]) if os.environ.get("SIM_STATE_FILE") else None,
        help="keep links, queues and outboxes across restarts [$SIM_STATE_FILE]",
    )
    args = parser.parse_args(argv)
    for name in ("qr_rotate_ms", "qr_refs_per_batch", "ping_interval_ms", "ping_timeout_ms"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.sync_delay_ms < 0:
        parser.error("--sync-delay-ms must not be negative")
    if args.ping_timeout_ms <= args.ping_interval_ms:
        parser.error("--ping-timeout-ms must be longer than --ping-interval-ms")
    if (args.tls_port is None) != (args.tls_cert is None) or (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-port, --tls-cert and --tls-key go together")
    return args


async def serve(app: web.Application, host: str, port: int, tls: tuple[int, ssl.SSLContext] | None = None) -> None:
    """Listen until a stop signal, then close page sockets and save state."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        if tls is not None:
            await web.TCPSite(runner, host, tls[0], ssl_context=tls[1]).start()
            log.info("simulator listening on https://%s:%d/ (TLS)", host, runner.addresses[1][1])
        log.info("simulator listening on http://%s:%d/", host, bound_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("simulator stopping")
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = SimConfig(
        qr_rotate_ms=args.qr_rotate_ms,
        qr_refs_per_batch=args.qr_refs_per_batch,
        ping_interval_ms=args.ping_interval_ms,
        ping_timeout_ms=args.ping_timeout_ms,
        sync_delay_ms=args.sync_delay_ms,
        state_file=args.state_file,
        wa_version=args.wa_version,
        without_modules=tuple(args.without_module),
    )
    tls = None
    if args.tls_port is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            log.error("cannot load --tls-cert/--tls-key: %s", exc)
            return 2
        tls = (args.tls_port, context)
    try:
        app = create_app(config)
    except (ValueError, OSError) as exc:
        log.error("cannot load --state-file %s: %s", args.state_file, exc)
        return 2
    try:
        asyncio.run(serve(app, args.host, args.port, tls))
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
