# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CHROMIUM := /usr/bin/chromium

.PHONY: run serve test venv browser lint format clean

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

# The browser test drives Debian's chromium through Playwright; install it
# where apt-get can (elsewhere that one test is skipped).
browser:
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null; then \
		apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache build dist *.egg-info
