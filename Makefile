# Two commands on a fresh machine:
#   make run   - create .venv, install requirements.txt, start the app on http://localhost:8501
#   make test  - create .venv, install requirements-dev.txt and Debian's chromium/nginx/postgresql,
#                run every test
# The run store is a SQLite file under data/ unless NNPG_DATABASE_URL names a database;
# the app applies its migrations at start-up.
#   make migrate - apply them by hand to the database NNPG_DATABASE_URL (or data/) names
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench migrate system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# Browser tests use Debian's chromium (playwright cannot download browsers here);
# the scale-out test puts Debian's nginx in front of two app processes; the store
# tests start a throw-away cluster with Debian's postgresql (tests/postgres.py).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

run: $(VENV)/.runtime
	$(BIN)/python -m streamlit run app.py --server.port $(PORT)

migrate: $(VENV)/.runtime
	$(BIN)/python -m playground.store upgrade

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/hadolint Dockerfile

test: $(VENV)/.dev system-deps lint
	$(BIN)/python -m pytest

bench: $(VENV)/.dev
	$(BIN)/python bench/train_bench.py
	$(BIN)/python bench/jobs_bench.py
	$(BIN)/python bench/ui_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
