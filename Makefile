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
# build of your own) instead of installing torch 2.13.0; see README "GPU".
TORCH ?= pinned
DEVICE ?= cuda

.PHONY: install weights run test bench bench-scale gpu-check clean

install: $(INSTALLED)

# torch first (the local CPU build, or the CUDA build PyPI serves on a GPU
# machine), then mmcv compiled with its ops against it (CPU or CUDA ops:
# pose_suite/models/install_mmcv.py decides and says which; about 15 minutes the
# first time, pip caches the wheel), then the rest.
$(INSTALLED): requirements.txt constraints.txt
ifeq ($(TORCH),system)
	test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -m pose_suite.models.install_mmcv --check-torch
	sed "s/^torch==.*/torch==$$($(PY) -c 'import torch; print(torch.__version__)')/" constraints.txt > $(VENV)/constraints.txt
	$(PIP) install -q -c $(VENV)/constraints.txt "setuptools<81" "numpy<2" wheel ninja
else
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	cp constraints.txt $(VENV)/constraints.txt
	$(PIP) install -q -c $(VENV)/constraints.txt torch==2.13.0 "setuptools<81" "numpy<2" wheel ninja
endif
	$(PY) -m pose_suite.models.install_mmcv -- -q -c $(VENV)/constraints.txt
	$(PIP) install -q -c $(VENV)/constraints.txt -r requirements.txt
	$(PIP) install -q -c $(VENV)/constraints.txt --no-deps mmpose==1.3.2
	$(PY) -c "import mmcv.ops, mmdet, detection_service, pose_extraction_service"
	touch $@

weights: $(DET_WEIGHTS) $(POSE_WEIGHTS)

$(DET_WEIGHTS) $(POSE_WEIGHTS): | $(INSTALLED)
	$(PY) -m pose_suite.models.weights --dest config_files

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

test: $(TEST_INSTALLED)
	$(PY) -m pytest -rs tests

# Side-by-side speed: this suite, mmpose's demo, a plain mmdet+mmpose loop
# (about 25 minutes on 2 cores); writes benchmarks/RESULTS.md.
bench: install
	$(PY) benchmarks/bench.py

# The same folder through executor local and ray, 1 and 2 workers (about 15
# minutes; root: Ray runs in a loopback-only network namespace); writes its
# section of benchmarks/RESULTS.md.
bench-scale: install
	$(PY) benchmarks/bench_scale.py

# For the day a CUDA machine is at hand (README "GPU"): the tests marked gpu,
# a CUDA run against a CPU run, and this suite against mmpose's demo on that
# GPU, as one table; under 8 minutes, no network. DEVICE=cpu: its dry run.
gpu-check: install
	$(PY) benchmarks/gpu_check.py --device $(DEVICE)

clean:
	rm -rf $(VENV) .pytest_cache output/*.json
