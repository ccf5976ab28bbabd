# The two commands a new user needs: `make run` and `make test`. `make test-all`
# is continuous integration's: the suite on SQLite, PostgreSQL and MariaDB.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CHROMIUM := /usr/bin/chromium
REDIS_URL ?= redis://127.0.0.1:6379/0
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
MARIADB_URL ?= mysql://root@127.0.0.1:3306/test

.PHONY: run serve test test-all venv browser lint format clean system-packages services

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Reinstall whenever the declared dependencies change.
$(VENV)/.installed: $(BIN)/python pyproject.toml requirements.txt
	$(BIN)/pip install -q -r requirements.txt -e '.[test]'
	touch $@

venv: $(VENV)/.installed

run: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo_metrics
	@echo
	@echo "metricsite: http://$(HOST):$(PORT)/metrics and http://$(HOST):$(PORT)/admin/"
	@echo "No admin user ships with the demo; create one with:"
	@echo "    $(BIN)/python manage.py createsuperuser"
	@echo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The demo under gunicorn with three workers (see gunicorn.conf.py).
serve: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo_metrics
	GUNICORN_BIND=$(HOST):$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py

test: venv browser
	$(BIN)/python -m pytest

CHROMIUM := /usr/bin/chromium
REDIS_URL ?= redis://127.0.0.1:6379/0
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
MARIADB_URL ?= mysql://root@127.0.0.1:3306/test

.PHONY: run serve test test-all venv browser lint format clean system-packages services
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache build dist *.egg-info
