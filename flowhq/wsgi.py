import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flowhq.settings")
django_application = get_wsgi_application()

from flowhq.chunked import reads_chunked_bodies  # noqa: E402  (after Django's set-up: it reads settings)

application = reads_chunked_bodies(django_application)
