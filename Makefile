PY ?= python3
PIP = $(PY) -m pip
# llama.cpp is compiled for this machine's CPU, without CUDA or network features. Where the
# CPU reports AMX, its vector features are listed instead of -march=native: the AMX kernels
# crash (general protection fault in libggml-cpu) in VMs that advertise AMX without backing it.
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has = $(if $(findstring $(1),$(CPU_FLAGS)),-DGGML_$(2)=ON)
ifneq (,$(findstring amx_tile,$(CPU_FLAGS)))
LLAMA_CPU = -DGGML_NATIVE=OFF $(call has,avx,AVX) $(call has,avx2,AVX2) $(call has,fma,FMA) \
	$(call has,f16c,F16C) $(call has,avx_vnni,AVX_VNNI) $(call has,avx512f,AVX512) \
	$(call has,avx512_vnni,AVX512_VNNI) $(call has,avx512_bf16,AVX512_BF16) \
	$(call has,avx512vbmi,AVX512_VBMI)
else
LLAMA_CPU = -DGGML_NATIVE=ON
endif
export CMAKE_ARGS ?= $(LLAMA_CPU) -DGGML_CUDA=OFF -DLLAMA_CURL=OFF -DGGML_OPENMP=ON

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
