from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import beat_init

        from workers import receivers
        from workers.periodic import on_beat_init

        receivers.connect()
        beat_init.connect(on_beat_init, weak=False)
