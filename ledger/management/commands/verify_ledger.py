import time

from django.core.management.base import BaseCommand, CommandError

from audit.actors import Actor
from ledger.models import LedgerEntry
from ledger.services.reconciliation import ledger_verify
from tenants.models import Tenant
from zentra.progress import ProgressBar

PROGRESS_THRESHOLD = 20_000


class Command(BaseCommand):
    help = ("Verify the ledger: per account stored balance = sum of entries = last balance_after, gapless "
            "sequences, the keyed hash chain against the latest signed checkpoint; per tenant and currency a "
            "zero trial balance. Exits 1 on any break not yet resolved.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG", help="verify only this tenant")
        parser.add_argument("--progress", action="store_true", help="always show the progress bar")

    def handle(self, *args, tenant=None, progress=False, **options):
        tenants = Tenant.objects.order_by("slug")
        if tenant:
            tenants = tenants.filter(slug=tenant)
            if not tenants.exists():
                raise CommandError(f"no tenant with slug {tenant!r}")
        total = LedgerEntry.objects.filter(tenant__in=tenants).count()
        show_progress = progress or total >= PROGRESS_THRESHOLD
        started = time.monotonic()
        done = 0
        broken = still_open = 0
        actor = Actor.system("verify_ledger")
        bar = ProgressBar("entries")
        for scope in tenants:
            run = ledger_verify(tenant=scope, actor=actor, trigger="command",
                                progress=bar if show_progress else None, progress_offset=done,
                                progress_total=total)
            done += run.entries_checked
            if show_progress:
                bar(done, total)
                bar.end()
            status = self.style.SUCCESS("ok") if run.status == run.OK else self.style.ERROR("BROKEN")
            self.stdout.write(f"{scope.slug:<20} {status:<6} accounts {run.accounts_checked:>7}  "
                              f"entries {run.entries_checked:>10}  breaks {run.breaks_count:>4}  run {run.id}")
            for found in run.breaks.all()[:50]:
                where = found.account_id or found.currency
                accepted = f"  [resolved, {found.resolution}: {found.note}]" if found.resolved_at else ""
                self.stdout.write(f"    {found.kind:<24} {where:<32} {found.detail}{accepted}")
            if run.breaks_count > 50:
                self.stdout.write(f"    ... {run.breaks_count - 50} more breaks in run {run.id} (see the admin)")
            broken += run.breaks_count
            still_open += run.breaks.filter(status="open").count()
        elapsed = time.monotonic() - started
        self.stdout.write(f"checked {done} entries in {elapsed:.1f}s: "
                          + ("no breaks" if not broken else f"{broken} break(s), {still_open} not resolved"))
        # A break an owner resolved (a known, accepted anomaly) no longer fails the check.
        if still_open:
            raise CommandError(f"ledger verification found {still_open} unresolved break(s)", returncode=1)
