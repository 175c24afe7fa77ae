"""The WhatsApp bot that runs inside a tenant worker (see runtime.py)."""
