# The two front-door commands: `make demo` and `make test`. Both create .venv
# with `python3 -m venv` and install the pinned requirements into it when it is
# missing or when a requirements file or setup.py changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_DIR ?= data
RUN_DIR ?= runs/demo

BENCH_VENV := .venv-bench

.PHONY: setup test data demo bench clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-test.txt requirements-peer.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-test.txt
	# the peer generator asks for tensorflow~=2.20 but runs beside 2.21: no deps
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-peer.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# .venv-bench holds torch + transformers, the reference some model tests compare
# against (in a subprocess); the product's .venv never gets them.
test: $(STAMP) data $(BENCH_VENV)/.installed
	$(PY) -m pytest -q

data: $(STAMP)
	$(PY) -m pipeline.sample_data --data_dir $(DATA_DIR)

demo: data
	bash scripts/demo.sh $(PY) $(DATA_DIR) $(RUN_DIR)

# The PyTorch peers of the benchmarks (and the tests' reference) live in their own venv.
$(BENCH_VENV)/.installed: requirements-bench.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

bench: $(STAMP) data $(BENCH_VENV)/.installed
	$(PY) benchmarks/bench_encode.py
	$(PY) benchmarks/bench_pipeline.py --repeats 3
	$(PY) benchmarks/bench_pretrain.py --repeats 3
	$(PY) benchmarks/bench_serving.py
	$(PY) benchmarks/finetune_parity.py
	$(PY) benchmarks/bench_finetune.py --tasks rt,ner --seeds 1,2,3
	$(PY) benchmarks/bench_adaptation.py --domain_vocab
	$(PY) benchmarks/bench_precision.py --repeats 3
	$(PY) benchmarks/bench_recipes.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(RUN_DIR)
