PY ?= python3
PIP = $(PY) -m pip
# llama.cpp is compiled for this machine's CPU, without CUDA or network features.
export CMAKE_ARGS ?= -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DLLAMA_CURL=OFF -DGGML_OPENMP=ON

.PHONY: install install-test demo test lint bench

install:
	$(PIP) install -q -e '.[all]'

install-test:
	$(PIP) install -q -e '.[test]'

demo: install
	memp demo

test: install-test
	$(PY) -m ruff check src tests bench
	$(PY) -m pytest -q

lint:
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench

bench:
	$(PIP) install -q -e '.[all,bench]'
	$(PY) bench/retrieval.py
	$(PY) bench/llm.py
	$(PY) bench/react_prompt.py
	$(PY) bench/service.py
