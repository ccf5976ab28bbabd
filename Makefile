# The two commands a new user needs: `make run` and `make test`. `make test-all`
# is continuous integration's: the docs built strictly, the suite on every
# supported Python and Django (nox, SQLite), then on SQLite, PostgreSQL and MariaDB.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CHROMIUM := /usr/bin/chromium
REDIS_URL ?= redis://127.0.0.1:6379/0
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
MARIADB_URL ?= mysql://root@127.0.0.1:3306/test
# For example NOX_ARGS=-r to reuse the matrix virtualenvs of an earlier run.
NOX_ARGS ?=

.PHONY: run serve test test-all bench venv browser lint format clean system-packages services docs screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Reinstall whenever the declared dependencies change. `make run` and `make
# serve` need only the demo; the test tooling (Playwright, ruff, build, nox)
# comes with `make test`.
$(VENV)/.installed-demo: $(BIN)/python pyproject.toml requirements.txt
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed: $(VENV)/.installed-demo
	$(BIN)/pip install -q -r requirements.txt -e '.[test]'
	touch $@

venv: $(VENV)/.installed

run: $(VENV)/.installed-demo
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo_metrics
	$(BIN)/python manage.py seed_shop
	@echo
	@echo "metricsite: http://$(HOST):$(PORT)/metrics and http://$(HOST):$(PORT)/admin/"
	@echo "No admin user ships with the demo; create one with:"
	@echo "    $(BIN)/python manage.py createsuperuser"
	@echo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The demo under gunicorn with three workers (see gunicorn.conf.py).
serve: $(VENV)/.installed-demo
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo_metrics
	$(BIN)/python manage.py seed_shop
	GUNICORN_BIND=$(HOST):$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py

test: venv browser
	$(BIN)/python -m pytest

# The browser test drives Debian's chromium through Playwright; install it
# where apt-get can (elsewhere that one test is skipped).
browser:
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null; then \
		apt-get -o DPkg::Lock::Timeout=300 update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
			install -y -q chromium; \
	fi

# The database drivers need the system packages (mysqlclient compiles).
$(VENV)/.installed-db: $(VENV)/.installed | system-packages
	$(BIN)/pip install -q -r requirements.txt -e '.[test,db]'
	touch $@

# Debian packages that test-all needs and a fresh machine may lack: Prometheus,
# promtool and Alertmanager for the end-to-end tests, and the headers
# mysqlclient builds on.
system-packages:
	@missing=""; \
	command -v prometheus >/dev/null && command -v promtool >/dev/null \
		|| missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null \
		|| missing="$$missing prometheus-alertmanager"; \
	pkg-config --exists mysqlclient 2>/dev/null \
		|| missing="$$missing default-libmysqlclient-dev pkg-config"; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		apt-get -o DPkg::Lock::Timeout=300 update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
			install -y -qq --no-install-recommends $$missing; \
	fi

services:
	bash .ci/services

# The suite with Redis as the shared cache; METRICDEMO_NO_SKIP makes a skipped
# test fail the run, since test-all installs and starts everything the tests use.
# pytest-xdist runs it on one worker per CPU plus one (tests marked xdist_group
# share one), as noxfile.py does the matrix: the suite spends about a third of
# its time waiting for the servers and processes it starts, and the extra
# worker fills it. `make test` stays a single process. `make test-all
# PARALLEL=` runs the three database suites in one process each.
WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
PARALLEL ?= -n $(WORKERS) --dist loadgroup
SUITE = REDIS_URL=$(REDIS_URL) METRICDEMO_NO_SKIP=1 $(BIN)/python -m pytest $(PARALLEL)

# The matrix first (noxfile.py: each Python and Django on SQLite, and the
# lowest versions allowed), then the three databases on the default Python.
# The matrix leaves out the cell of this virtualenv's own Python and Django:
# the SQLite suite below is that cell, run with every service.
CELL = $(BIN)/python -c 'import sys, django; print("%d.%d/%d.%d" % (*sys.version_info[:2], *django.VERSION[:2]))'
# The PostgreSQL and MariaDB suites leave out the tests marked backend_neutral
# (a browser, the docs, the package, a real Prometheus reading the format),
# whose outcome no database changes: the SQLite suite runs them.
test-all: system-packages services browser $(VENV)/.installed-db
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $(DOCS_SITE)
	METRICDEMO_MATRIX_DONE=$$($(CELL)) $(BIN)/nox $(NOX_ARGS)
	DATABASE_URL= $(SUITE)
	DATABASE_URL=$(POSTGRES_URL) $(SUITE) -m "not backend_neutral"
	DATABASE_URL=$(MARIADB_URL) $(SUITE) -m "not backend_neutral"

# The documentation site (mkdocs.yml, docs/) on http://$(HOST):$(DOCS_PORT)/;
# test-all builds it with --strict, so a broken link or anchor fails CI.
DOCS_PORT ?= 8001
DOCS_SITE ?= $(VENV)/site
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr $(HOST):$(DOCS_PORT)

# Take the docs' pictures of the admin again (docs/img/*.png): the browser
# test saves them there instead of in a temporary folder.
screenshots: venv browser
	METRICDEMO_SCREENSHOTS=docs/img $(BIN)/python -m pytest -q tests/integration/test_browser.py

# Scrape cost against bare OpenTelemetry, SQL per scrape, memory; prints a table
# with each target marked PASS or MISS (see docs/performance.md). With
# DATABASE_URL set, the row counts are measured on that database too.
bench: venv
	$(BIN)/python -m bench

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .nox db.sqlite3 .pytest_cache build dist *.egg-info site
