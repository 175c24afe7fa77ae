"""The first-run demo: a staff user and a demo tenant with reply templates."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

from tenants import services
from tenants.models import MatchKind, ReplyTemplate, Tenant
from workers.lifecycle import worker_start

DEMO_SLUG = "demo"
DEMO_MEMBER = "owner@demo.example"
DEMO_TEMPLATES = [
    (MatchKind.EXACT, "menu", "Today: espresso 2.50, flat white 3.20, croissant 2.00.", 10),
    (MatchKind.KEYWORD, "hours", "We are open 7:00-18:00, Monday to Saturday.", 5),
    (MatchKind.REGEX, r"order\s+#?(\d+)", "Thanks {name}, we are looking up your order.", 5),
    (MatchKind.DEFAULT, "", "Hi {name}! This is {tenant}. Reply 'menu' or ask about our hours.", 0),
]


@dataclass(frozen=True)
class Demo:
    tenant: Tenant
    username: str
    token: str


@transaction.atomic
def demo_setup(*, admin_password: str) -> Demo:
    """Idempotent: running it again keeps the data and resets the password."""
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(
        username="admin", defaults={"email": "admin@demo.example", "is_staff": True, "is_superuser": True}
    )
    user.is_staff = user.is_superuser = True
    user.set_password(admin_password)
    user.save()
    token, _ = Token.objects.get_or_create(user=user)

    tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
    if tenant is None:
        tenant = services.tenant_create(name="Demo Café", slug=DEMO_SLUG)
        for match, pattern, body, priority in DEMO_TEMPLATES:
            ReplyTemplate.objects.create(tenant=tenant, match=match, pattern=pattern, body=body, priority=priority)
        services.membership_add(tenant=tenant, email=DEMO_MEMBER)
        # A new demo tenant starts at once; later runs respect what the operator chose.
        transaction.on_commit(lambda: worker_start(tenant_id=tenant.pk, reason="demo tenant created"))
    return Demo(tenant=tenant, username=user.username, token=token.key)
