from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import beat_init

        from webhooks import receivers
        from webhooks.periodic import on_beat_init

        receivers.connect()
        beat_init.connect(on_beat_init, weak=False)
