# Two commands for users: `make run` and `make test`. Both set up what they
# need first; re-running is fast when nothing changed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
INSTALLED := $(VENV)/.installed
TEST_INSTALLED := $(VENV)/.test-installed
# Pose2Sim's own code reads our pose2sim export back in tests/test_pose2sim.py.
POSE2SIM := pose2sim==0.10.49
# Sports2D's own angle functions check ours in tests/test_angles.py.
SPORTS2D := sports2d==0.8.34
DET_WEIGHTS := config_files/rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth
POSE_WEIGHTS := config_files/hrnet_w48_coco_wholebody_384x288_dark-f5726563_20200918.pth
# TORCH=system: keep the torch already installed for $(PYTHON) (e.g. a CUDA
# build of your own) instead of installing torch 2.13.0; see docs/gpu.md.
TORCH ?= pinned
DEVICE ?= cuda
# WHEELHOUSE=DIR: install from the wheels in DIR only, no package index
# (a machine without internet; DIR made by `make wheelhouse` on a connected
# machine with the same OS, Python and kind of GPU). `make wheelhouse`
# writes to it (default: wheelhouse/).
WHEELHOUSE ?=
PIP_FROM := $(if $(WHEELHOUSE),--no-index --find-links $(abspath $(WHEELHOUSE)))
# WEIGHTS_FROM=DIR: `make weights` copies the two checkpoints from DIR
# (hashes checked as for a download) instead of downloading them.
WEIGHTS_FROM ?=
# Python versions `make install` works with; another stops it at once, in
# one line (torch 2.13 and mmcv 2.1.0 built here; xtcocotools has no wheel
# for 3.12 and is built against the pinned numpy, see below).
PYTHONS := 3.10 3.11 3.12

.PHONY: system-venv install weights wheelhouse run test test-fast test-rest docs bench bench-scale gpu-check clean

install: $(INSTALLED)

# torch first (the local CPU build, or the CUDA build PyPI serves on a GPU
# machine), then mmcv compiled with its ops against it (CPU or CUDA ops:
# pose_suite/models/install_mmcv.py decides and says which; about 15 minutes the
# first time, pip caches the wheel), then the rest. xtcocotools (evaluation)
# has no wheel for Python 3.12: pip would build it against an isolated
# numpy 2 that the pinned numpy<2 cannot load, so it is built against the
# numpy installed (a wheel is taken where one exists).
$(INSTALLED): requirements.txt constraints.txt
	@$(PYTHON) -c 'import sys; v = "%d.%d" % sys.version_info[:2]; sys.exit(None if v in "$(PYTHONS)".split() else f"error: $(PYTHON) is Python {v}; make install works with Python $(PYTHONS): give one, e.g. make install PYTHON=python3.11")'
ifeq ($(TORCH),system)
	$(MAKE) --no-print-directory system-venv
	$(PY) -m pose_suite.models.install_mmcv --check-torch
	sed "s/^torch==.*/torch==$$($(PY) -c 'import torch; print(torch.__version__)')/" constraints.txt > $(VENV)/constraints.txt
	$(PIP) install -q $(PIP_FROM) -c $(VENV)/constraints.txt "setuptools<81" "numpy<2" wheel ninja cython
else
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	cp constraints.txt $(VENV)/constraints.txt
	$(PIP) install -q $(PIP_FROM) -c $(VENV)/constraints.txt torch==2.13.0 "setuptools<81" "numpy<2" wheel ninja cython
endif
	$(PIP) install -q $(PIP_FROM) -c $(VENV)/constraints.txt --no-build-isolation xtcocotools
	$(PY) -m pose_suite.models.install_mmcv -- -q $(PIP_FROM) -c $(VENV)/constraints.txt
	$(PIP) install -q $(PIP_FROM) -c $(VENV)/constraints.txt -r requirements.txt
	$(PIP) install -q $(PIP_FROM) -c $(VENV)/constraints.txt --no-deps mmpose==1.3.2
	$(PY) -c "import mmcv.ops, mmdet, detection_service, pose_extraction_service"
	touch $@

# A venv that sees the packages of $(PYTHON): its base interpreter's
# (--system-site-packages) and, where $(PYTHON) is itself a venv's Python (as
# on many GPU images), that venv's too (pose_suite/models/parent_venv.py).
system-venv:
	test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(PYTHON) -m pose_suite.models.parent_venv $(VENV)

weights: $(DET_WEIGHTS) $(POSE_WEIGHTS)

$(DET_WEIGHTS) $(POSE_WEIGHTS): | $(INSTALLED)
	$(PY) -m pose_suite.models.weights --dest config_files $(if $(WEIGHTS_FROM),--from $(WEIGHTS_FROM))

# For machines without internet: every wheel `make install` needs (mmcv's
# as built here, with the ops this machine's decision chose) into
# $(WHEELHOUSE) (default wheelhouse/); copy it, with the two checkpoints,
# to the other machine and run `make install WHEELHOUSE=DIR` and
# `make weights WEIGHTS_FROM=DIR` there.
wheelhouse: WHEELHOUSE := $(or $(WHEELHOUSE),wheelhouse)
wheelhouse: PIP_FROM :=
wheelhouse: install
	$(PIP) wheel -q -w $(WHEELHOUSE) -c $(VENV)/constraints.txt $(if $(filter system,$(TORCH)),,torch==2.13.0) "setuptools<81" "numpy<2" wheel ninja cython -r requirements.txt
	$(PIP) wheel -q -w $(WHEELHOUSE) --no-deps mmpose==1.3.2
	$(PY) -m pose_suite.models.install_mmcv --wheel-dir $(WHEELHOUSE) -- -q -c $(VENV)/constraints.txt
	@echo "wheelhouse: $$(ls $(WHEELHOUSE) | wc -l) wheels in $(WHEELHOUSE)/ ($$(du -sh $(WHEELHOUSE) | cut -f1)); on the other machine: make install WHEELHOUSE=DIR"

config.json: | $(INSTALLED)
	$(PY) creating_config.py --config $@

run: install weights config.json
	$(PY) pose_analysis_service.py --config config.json

# Test-only packages: Pose2Sim without its heavy declared dependencies (none
# of them pulls torch, so the repository's constraints do for TORCH=system),
# Playwright, Debian's chromium for the report's browser tests, and Debian's
# ffmpeg (ffmpeg and ffprobe) for the frame-position matrix, which makes its
# clips with ffmpeg and checks them against ffprobe (as root; otherwise
# those tests are skipped and say why). The Makefile is a prerequisite so
# that an environment set up before a tool was added gets it.
$(TEST_INSTALLED): $(INSTALLED) tests/requirements.txt Makefile
	$(PIP) install -q -c constraints.txt -r tests/requirements.txt
	$(PIP) install -q -c constraints.txt --no-deps $(POSE2SIM) $(SPORTS2D)
	$(PY) -c "import Pose2Sim.triangulation"
	command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } || \
	  echo "chromium could not be installed: the report's browser tests will be skipped"
	{ command -v ffmpeg && command -v ffprobe; } >/dev/null || [ "$$(id -u)" != 0 ] || \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q ffmpeg >/dev/null || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ffmpeg >/dev/null; } || \
	  echo "ffmpeg could not be installed: the frame-position matrix will be skipped"
	touch $@

# The fast tier: every test that needs no install (venvs, wheelhouses),
# Ray, browser or real-size model (the markers in tests/conftest.py); a few
# minutes. `make test` is the whole suite, `make test-rest` what the fast
# tier leaves (.ci/run runs the two in turn). Each runs on TEST_WORKERS
# pytest workers (pytest-xdist; default one per core; a test file stays on
# one worker), each with one torch thread. PYTEST_ARGS=-x: stop at the
# first failure.
FAST_TIER := not (install or ray or browser or models)
TEST_WORKERS ?= auto
PYTEST_ARGS ?=
PYTEST := $(PY) -m pytest -rs -n $(TEST_WORKERS) --dist loadfile

test: $(TEST_INSTALLED)
	$(PYTEST) --durations=25 $(PYTEST_ARGS) tests

test-fast: $(TEST_INSTALLED)
	$(PYTEST) --durations=10 -m "$(FAST_TIER)" $(PYTEST_ARGS) tests

test-rest: $(TEST_INSTALLED)
	$(PYTEST) --durations=25 -m "not ($(FAST_TIER))" $(PYTEST_ARGS) tests

# The documentation site (docs/, mkdocs.yml) into site/ with --strict: a
# broken link or anchor, or a page missing from the nav, stops it. `make
# test` builds it too (tests/test_docs_site.py). It needs only mkdocs and
# mkdocs-material (their pins in tests/requirements.txt), not the stack:
# the venv is made if missing and only they are installed.
DOCS_INSTALLED := $(VENV)/.docs-installed
$(DOCS_INSTALLED): tests/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	grep -E '^mkdocs' tests/requirements.txt > $(VENV)/docs-requirements.txt
	$(PIP) install -q -c constraints.txt -r $(VENV)/docs-requirements.txt
	touch $@

docs: $(DOCS_INSTALLED)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

# Side-by-side speed: this suite, mmpose's demo, a plain mmdet+mmpose loop
# (about 25 minutes on 2 cores), then the models through PyTorch, OpenVINO
# and ONNX Runtime, native and with oneDNN capped (about 35 minutes);
# writes benchmarks/RESULTS.md.
bench: install
	$(PY) benchmarks/bench.py
	$(PY) benchmarks/bench_runtimes.py

# The same folder through executor local and ray, 1 and 2 workers (about 15
# minutes; root: Ray runs in a loopback-only network namespace); writes its
# section of benchmarks/RESULTS.md.
bench-scale: install
	$(PY) benchmarks/bench_scale.py

# For the day a CUDA machine is at hand (docs/gpu.md): the tests marked gpu,
# a CUDA run against a CPU run, and this suite against mmpose's demo on that
# GPU, as one table; under 8 minutes, no network. DEVICE=cpu: its dry run.
gpu-check: install
	$(PY) benchmarks/gpu_check.py --device $(DEVICE)

clean:
	rm -rf $(VENV) .pytest_cache output/*.json
