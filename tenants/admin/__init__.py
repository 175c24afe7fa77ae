"""The Django admin of the tenant domain: the operator's cockpit.

The tenant changelist (workers/admin_tenant.py: it shows the worker, so the
workers app registers it) shows every bot's health at a glance (coloured badges,
heartbeat age, host) in a fixed number of queries. The tenant page adds the
live block — the QR code while the session waits for a scan, the session, the
worker and its latest transitions — refreshed in place from a small staff-only
fragment view, plus lifecycle buttons, the latest messages and the reply
templates. Writes go through the same services as the API, so the admin obeys
the same rules (template validation, reloading the running bot, one session
and worker per tenant, no deleting a running tenant).
"""

from django.contrib import admin

admin.site.site_header = "FlowHQ operations"
admin.site.site_title = "FlowHQ admin"
admin.site.index_title = "Tenants, workers and fleet"

# Registration happens on import. The tenant page itself shows the tenant's worker, so it is
# registered by the workers app (workers/admin_tenant.py); these are the other models' pages.
from tenants.admin import related  # noqa: E402, F401
