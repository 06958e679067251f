"""`make demo-env`: the demo's URLs, logins, API key and account ids again, as shell lines."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from backoffice.selectors.demo import demo_env

from . import seed_demo


class Command(BaseCommand):
    help = "Print the demo's URLs, logins, API key and account ids as shell lines (eval-able)."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--key-file", type=Path, default=seed_demo.DEMO_KEY_FILE)

    def handle(self, *args, base_url, key_file, **options):
        text = demo_env(base_url=base_url.rstrip("/"), key_file=key_file)
        if text is None:
            raise CommandError("No demo here yet (or its API key was revoked): `make run` seeds it.")
        self.stdout.write(text)
