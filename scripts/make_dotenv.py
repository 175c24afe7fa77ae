"""Print a .env for a first run on this machine: fresh secrets, local HTTP."""

import secrets

print(f"""# Written by `make run` for this machine; not committed. Edit freely.
SECRET_KEY={secrets.token_urlsafe(50)}
PORTAL_INTERNAL_KEY={secrets.token_urlsafe(32)}
DEMO_ADMIN_PASSWORD={secrets.token_urlsafe(12)}
# The demo serves plain HTTP on localhost.
SECURE_SSL_REDIRECT=0
SESSION_COOKIE_SECURE=0
CSRF_COOKIE_SECURE=0
SECURE_HSTS_SECONDS=0
# The bot talks to the local simulator, not web.whatsapp.com.
WHATSAPP_WEB_URL=http://127.0.0.1:8100/
""")
