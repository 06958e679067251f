# Zentra: one command to run the back office, one to test it. See README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: install lock lint run serve demo-env test bench bench-console bench-reconciliation bench-expiry bench-webhooks bench-api bench-services screenshots migrate services browser clean

install: $(STAMP)

# Every dependency comes pinned, with its hashes, from requirements.lock (make lock writes it
# from pyproject.toml); the project itself is installed on top, editable, without resolving.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

lock: install
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --universal --generate-hashes --python-version 3.11 \
		-o requirements.lock

# ruff (pyflakes, pycodestyle, isort, bugbear, pyupgrade), mypy with the Django and DRF stubs
# (strict on services, selectors and shapes), and the app layering of import-linter.
lint: install
	$(VENV)/bin/ruff check .
	DJANGO_DEBUG=1 $(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

services:
	@bash scripts/ensure-services

browser:
	@bash scripts/ensure-chromium

migrate: install services
	DJANGO_DEBUG=1 $(PY) manage.py ensure_database
	DJANGO_DEBUG=1 $(PY) manage.py migrate --noinput

# Local development settings (a fresh secret key, debug on, local webhook receivers allowed),
# read by manage.py, Celery and gunicorn alike; never by the tests. Delete it to start over.
.env:
	@printf '%s\n' "# Local development settings, written by make run (git-ignored; delete to regenerate)." \
		"DJANGO_DEBUG=1" "DJANGO_SECRET_KEY=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')" \
		"ZENTRA_LEDGER_KEY=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')" \
		"ZENTRA_SIGNING_KEY=$$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')" \
		"ZENTRA_WEBHOOK_ALLOW_PRIVATE=1" \
		"# The schema owner (migrations, commands); web, worker and beat use zentra_app (docs/security.md)." \
		"DATABASE_URL=postgres://zentra_owner@127.0.0.1:5432/zentra" \
		"DATABASE_ADMIN_URL=postgres://root@127.0.0.1:5432/postgres" > .env
	@echo "wrote .env (local development settings)"

# Web, worker and beat together; the demo's shell lines come last. Ctrl-C stops all three.
run: .env migrate
	$(PY) manage.py seed_demo --verbosity 0 --base-url http://127.0.0.1:$(PORT)
	@$(PY) scripts/stack.py run --port $(PORT)

# The demo's URLs, logins, API key and account ids again: eval "$$(make -s demo-env)"
# (No install step: its output would land in the eval; make run has installed everything.)
demo-env:
	@test -x $(PY) || { echo "no .venv yet: make run first" >&2; exit 1; }
	@$(PY) manage.py demo_env --base-url http://127.0.0.1:$(PORT)

# As production runs it: gunicorn, worker and beat, DJANGO_DEBUG=0, static files by WhiteNoise,
# JSON logs. Needs DJANGO_SECRET_KEY (from the environment, or the .env of make run).
serve: migrate
	DJANGO_DEBUG=0 $(PY) manage.py collectstatic --noinput --verbosity 0
	@$(PY) scripts/stack.py serve --port $(PORT)

test: install services browser lint
	$(PY) -m pytest --contract-coverage

bench: migrate
	DJANGO_DEBUG=1 $(PY) bench/run.py

# The operator console's part of the bench alone (its own throwaway database).
bench-console: install services
	$(PY) bench/console.py

# Settlement report matching alone: 100,000 lines received and matched (its own throwaway database).
bench-reconciliation: install services
	$(PY) bench/reconciliation.py

# The hold expiry job alone: ZENTRA_BENCH_EXPIRED_HOLDS lapsed holds (100,000 by default).
bench-expiry: install services
	ZENTRA_BENCH_DATABASE=zentra_bench_expiry $(PY) bench/holds.py

# Through the API (gunicorn as configured): postings at 16 clients, hold cycles at 4, and the
# workers x threads grid behind zentra/gunicorn_conf.py's defaults (ZENTRA_BENCH_GRID=0 skips it).
bench-api: install services
	ZENTRA_BENCH_DATABASE=zentra_bench_api $(PY) bench/http_api.py

# Hold cycles and payment intents through the services, at 1 and 4 processes.
bench-services: install services
	ZENTRA_BENCH_DATABASE=zentra_bench_services $(PY) bench/services.py

# Webhook delivery throughput and the outbox's cost to a posting (ZENTRA_BENCH_DELIVERIES, 5,000).
bench-webhooks: install services
	ZENTRA_BENCH_DATABASE=zentra_bench_webhooks $(PY) bench/webhook_delivery.py

# The operator guide's pictures (docs/img/), from the demo in Chromium.
screenshots: install services browser
	$(PY) scripts/screenshots.py

clean:
	rm -rf $(VENV) var
