import time

from django.core.management.base import BaseCommand

from webhooks.services.delivery import relay_once


class Command(BaseCommand):
    help = ("Send due webhook deliveries from this process (the worker does this on its own; this is for "
            "operators and for running without Celery). --loop keeps sweeping.")

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="keep sweeping until interrupted")
        parser.add_argument("--interval", type=float, default=1.0)

    def handle(self, *args, loop=False, interval=1.0, **options):
        total = 0
        while True:
            sent = relay_once()
            total += sent
            if not loop:
                break
            if not sent:
                time.sleep(interval)
        self.stdout.write(f"attempted {total} deliver{'y' if total == 1 else 'ies'}")
