"""What runs inside a tenant worker for its whole life (see runner.py)."""
