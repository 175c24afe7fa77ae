"""The delivery status machine: PENDING until a 2xx (DELIVERED) or giving up (FAILED);
"send again" puts either back to PENDING."""

from __future__ import annotations

from flowhq.state_machine import StateMachine
from webhooks.models import DeliveryStatus as D

DELIVERY_MACHINE = StateMachine(
    "webhook delivery",
    {D.PENDING: {D.DELIVERED, D.FAILED}, D.DELIVERED: {D.PENDING}, D.FAILED: {D.PENDING}},
)
