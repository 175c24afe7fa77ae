"""Signed webhooks: an outbox of events per tenant, delivered by the `webhooks` Celery worker."""
