# One-command set-up: `make demo` and `make test` create .venv and install everything.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FMNIST_DIR := /usr/share/datasets/fashion-mnist

.PHONY: install data demo test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

# Real Fashion-MNIST ships as a Debian package; install it when we can (root, apt).
data:
	@if [ ! -d $(FMNIST_DIR) ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
	      || echo "warning: could not install dataset-fashion-mnist"; \
	  else \
	    echo "note: Fashion-MNIST not found; run 'sudo apt-get install dataset-fashion-mnist'"; \
	  fi; \
	fi

demo: install
	$(PY) -m experiments.meta_search --seed 2 --out runs/demo

test: install data
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check arl_jax experiments tests

clean:
	rm -rf $(VENV) runs .pytest_cache
