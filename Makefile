# The two commands of the README: `make run` and `make test`. Every other
# target is a step they take, runnable on its own.
SHELL := /bin/bash
# Empty: the newest of python3.13, 3.12, 3.11 found (tools/find_python.sh).
PYTHON ?=
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test venv proto proto-check model gallery native lint format bench clean \
	docker-base docker-build compose-up

run: venv model gallery native
	$(PY) -m tools.run_local

test: venv model gallery native proto-check lint
	$(PY) -m pytest $(PYTEST_ARGS)

# The virtual environment, from the hash-locked requirements: created with the
# interpreter find_python.sh picks, reinstalled when requirements/dev.txt
# changes, rebuilt when it was moved or PYTHON names another version
# (tools/make_venv.py). Its .pth file puts the repository (services, gateway,
# tools) and proto/ (the generated ic.v1 stubs) on the import path, found
# from the environment's own location, so every entry point is `python -m ...`.
venv:
	@python="$$(PYTHON='$(PYTHON)' tools/find_python.sh)" && \
	  "$$python" tools/make_venv.py --venv "$(VENV)" --repo "$(CURDIR)" \
	    --requirements requirements/dev.txt $(if $(PYTHON),--explicit)

# Regenerate the committed gRPC stubs from proto/ic/v1/*.proto.
proto: venv
	$(PY) -m tools.gen_proto proto

# Fail if the committed stubs differ from what the .proto files generate.
proto-check: venv
	$(PY) -m tools.gen_proto --check proto

# Every built-in model card's ONNX file into models/ (SqueezeNet 1.1: a local
# copy or the checksum-verified download; EfficientNet-Lite0: our converter),
# and the files of IC_EXTRA_MODELS's cards that have a url.
model: venv
	$(PY) -m services.classifier.fetch_model

# The nine photos of the original demo: a local copy, else the verified download.
gallery: venv
	$(PY) -m tools.fetch_gallery

# The PatchMatch C engine (a shared library loaded by services/patchmatch).
native:
	$(MAKE) -s -C services/patchmatch

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Containers. Compose v2 (`docker compose`) if installed, else docker-compose v1.
# Without a registry: `make docker-base`, then IC_BASE_IMAGE=ic-base:bookworm
# (in the environment or in .env) for docker-build and compose-up.
COMPOSE = $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

# A Debian bookworm + Python 3.11 base image from debootstrap (no registry needed).
docker-base:
	tools/docker/build_base_image.sh

# The four images. The models and the photos are staged in models/ and gallery/
# (the build context) so the image builds copy them instead of downloading.
docker-build: venv model gallery
	$(COMPOSE) build

compose-up: docker-build
	$(COMPOSE) up -d
	@echo "the page: http://localhost:$${IC_HTTP_PORT:-8080}/  (stop: $(COMPOSE) down)"

bench: venv model gallery native
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .venv-3.* models/*.onnx build .pytest_cache
	$(MAKE) -s -C services/patchmatch clean
