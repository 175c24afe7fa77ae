"""Times computed by the database, so that hosts with skewed clocks agree.

Heartbeats, leases and the stale sweep all compare against the database's
clock: a worker on a host whose clock runs fast cannot extend its own lease.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import DateTimeField, ExpressionWrapper
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now


def db_now_plus(ms: int) -> ExpressionWrapper[CombinedExpression]:
    return ExpressionWrapper(Now() + timedelta(milliseconds=ms), output_field=DateTimeField())
