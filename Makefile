# Zentra: one command to run the back office, one to test it. See README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: install lock lint run test bench bench-console screenshots migrate services browser clean

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

run: migrate
	DJANGO_DEBUG=1 $(PY) manage.py seed_demo --base-url http://127.0.0.1:$(PORT)
	DJANGO_DEBUG=1 ZENTRA_WEBHOOK_ALLOW_PRIVATE=$${ZENTRA_WEBHOOK_ALLOW_PRIVATE:-1} ZENTRA_PORT=$(PORT) \
		PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start -f Procfile

test: install services browser lint
	$(PY) -m pytest --contract-coverage

bench: migrate
	DJANGO_DEBUG=1 $(PY) bench/run.py

# The operator console's part of the bench alone (its own throwaway database).
bench-console: install services
	$(PY) bench/console.py

# The operator guide's pictures (docs/img/), from the demo in Chromium.
screenshots: install services browser
	$(PY) scripts/screenshots.py

clean:
	rm -rf $(VENV) var
