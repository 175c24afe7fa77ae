from datetime import timedelta

from django.http import HttpRequest

def get_cool_off(request: HttpRequest | None = None) -> timedelta | None: ...
