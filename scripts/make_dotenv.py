"""Print a .env for a first run on this machine: fresh secrets, local HTTP."""

import secrets

print(f"""# Written by `make run` for this machine; not committed. Edit freely.
SECRET_KEY={secrets.token_urlsafe(50)}
PORTAL_INTERNAL_KEY={secrets.token_urlsafe(32)}
DEMO_ADMIN_PASSWORD={secrets.token_urlsafe(12)}
# Flower (http://127.0.0.1:5555) asks for this user:password.
FLOWER_BASIC_AUTH=flower:{secrets.token_urlsafe(18)}
# Prometheus reads http://127.0.0.1:8000/metrics with `Authorization: Bearer <this>`.
METRICS_TOKEN={secrets.token_urlsafe(32)}
# The demo serves plain HTTP on localhost.
SECURE_SSL_REDIRECT=0
SESSION_COOKIE_SECURE=0
CSRF_COOKIE_SECURE=0
SECURE_HSTS_SECONDS=0
# The bot talks to the local simulator, not web.whatsapp.com.
WHATSAPP_WEB_URL=http://127.0.0.1:8100/
# The demo tenant keeps offering QR codes until one is scanned (production stops after 10).
QR_MAX_UNSCANNED=0
# Webhooks may go to receivers on this machine (n8n, a local test server).
WEBHOOK_ALLOW_PRIVATE=1
""")
