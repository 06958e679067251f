"""The demo as a shell sees it: the lines `make run` prints last and `make demo-env` prints
again, ready to paste (or `eval "$(make -s demo-env)"`) before the README's walkthrough."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from ledger.models import Account
from tenants.keys import key_matches, parse_prefix
from tenants.models import ApiKey, Tenant

# Shell variable -> (the demo account it names, what it is for).
DEMO_ACCOUNT_VARIABLES = {
    "FUND": ("Funding USD", "external, debit-normal: money enters the ledger from here"),
    "ALICE": ("Alice USD", "customer"),
    "BOB": ("Bob USD", "customer"),
    "SHOP": ("Demo Shop USD", "merchant"),
}
DEMO_LOGINS = ("demo-owner", "demo-operator", "demo-viewer", "demo-compliance", "acme-operator")


def demo_key_read(tenant: Tenant, key_file: Path) -> str | None:
    """The demo key kept in `key_file`, if it is still a live key of the tenant (keys are stored
    hashed: the file is the only place the raw key can be read again)."""
    if not key_file.exists():
        return None
    raw = key_file.read_text().strip()
    prefix = parse_prefix(raw)
    key = ApiKey.objects.filter(prefix=prefix, tenant=tenant, revoked_at__isnull=True).first() if prefix else None
    return raw if key is not None and key_matches(raw, key.key_hash) else None


def demo_env(*, base_url: str, key_file: Path) -> str | None:
    """The demo's URLs, logins, API key and account ids as shell lines; None without a demo."""
    tenant = Tenant.objects.filter(slug="demo").first()
    raw_key = demo_key_read(tenant, key_file) if tenant is not None else None
    if tenant is None or raw_key is None:
        return None
    ids = dict(Account.objects.filter(tenant=tenant, name__in=[name for name, _ in DEMO_ACCOUNT_VARIABLES.values()])
               .values_list("name", "id"))
    lines = [
        f"# Zentra demo. Admin: {base_url}/admin/ (password {settings.ZENTRA_DEMO_PASSWORD!r} for "
        + ", ".join(DEMO_LOGINS) + ")",
        f"# API docs: {base_url}/v1/docs. Paste these lines into your shell before the README's walkthrough,",
        '# or run: eval "$(make -s demo-env)"',
        f"export ZENTRA={base_url}",
        f"export KEY={raw_key}  # the demo tenant's write API key",
    ]
    lines += [f"export {variable}={ids[name]}  # {name}: {what}"
              for variable, (name, what) in DEMO_ACCOUNT_VARIABLES.items() if name in ids]
    return "\n".join(lines)
