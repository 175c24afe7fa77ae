from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from workers.demo import DEMO_MEMBER, demo_setup


class Command(BaseCommand):
    help = "Create the first-run demo: a staff user 'admin' and a demo tenant."

    def handle(self, *args: Any, **options: Any) -> None:
        password = settings.DEMO_ADMIN_PASSWORD
        if not password:
            raise CommandError("DEMO_ADMIN_PASSWORD is not set (make run writes it into .env)")
        demo = demo_setup(admin_password=password)
        port = settings.SIMULATOR_PORT
        self.stdout.write(
            f"""
FlowHQ demo is ready.
  Admin site      http://127.0.0.1:8000/admin/   user: {demo.username}   password: {password}
  Control API     http://127.0.0.1:8000/api/admin/tenants   (header: Authorization: Token {demo.token})
  API docs        http://127.0.0.1:8000/api/docs/
  Flower          http://127.0.0.1:{settings.FLOWER_PORT}/
  Phone (simulator) http://127.0.0.1:{port}/_sim/   (scan the QR, send messages as a customer)
  Demo tenant     #{demo.tenant.pk} "{demo.tenant.name}", portal member {DEMO_MEMBER}
"""
        )
