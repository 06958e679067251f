# Zentra: one command to run the back office, one to test it. See README.md.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: install run test bench migrate services clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

services:
	@bash scripts/ensure-services

migrate: install services
	DJANGO_DEBUG=1 $(PY) manage.py ensure_database
	DJANGO_DEBUG=1 $(PY) manage.py migrate --noinput

run: migrate
	DJANGO_DEBUG=1 $(PY) manage.py seed_demo --base-url http://127.0.0.1:$(PORT)
	DJANGO_DEBUG=1 ZENTRA_WEBHOOK_ALLOW_PRIVATE=$${ZENTRA_WEBHOOK_ALLOW_PRIVATE:-1} ZENTRA_PORT=$(PORT) \
		PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start -f Procfile

test: install services
	$(PY) -m pytest

bench: migrate
	DJANGO_DEBUG=1 $(PY) bench/run.py

clean:
	rm -rf $(VENV) var
