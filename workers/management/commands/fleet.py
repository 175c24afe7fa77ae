from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from workers.nudge import fleet_queue


class Command(BaseCommand):
    help = "Run this host's fleet agent: the Celery worker fleet@<host> that supervises tenant workers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.FLOWHQ_HOST, help="host name [FLOWHQ_HOST]")
        parser.add_argument("--capacity", type=int, default=settings.FLEET_CAPACITY,
                            help="tenant workers this host takes [FLEET_CAPACITY]")

    def handle(self, *args: Any, host: str, capacity: int, **options: Any) -> None:
        env = {**os.environ, "FLOWHQ_ROLE": "fleet", "FLOWHQ_HOST": host, "FLEET_CAPACITY": str(capacity)}
        argv = [
            sys.executable, "-m", "celery", "-A", "flowhq", "worker",
            "-n", f"fleet@{host}", "-Q", f"{fleet_queue(host)},control",
            "-P", "threads", "-c", "2", "--without-gossip", "--without-mingle",
            "--loglevel", settings.LOG_LEVEL,
        ]
        sys.stdout.flush()
        os.execvpe(sys.executable, argv, env)
