# Thin by design: one line per target, the logic lives in scripts/. See README.md.
SHELL := /bin/bash
PY := .venv/base/bin/python
export PYTHONPATH := $(CURDIR)
RECIPE ?=
PROFILE ?=
WORLD_SIZE ?=
FORCE ?=
MODEL ?=
SUITE ?= mcqa
BACKEND ?=
LIMIT ?=
DATASET ?=
DATABASE ?=
FIXTURES ?=
SOURCES ?=
HUB_DIR ?=
BASELINE ?=
JUDGE_URL ?=
LABELS ?=
LAUNCHER ?= slurm
CLUSTER ?=
DRY_RUN ?=
LAYOUT ?=
WAIT ?=
FROM ?= recipes/aloe-beta-8b
BASE ?=
NAME ?=
INSTRUCT ?=
CONFIG ?=
ARGS_PORT ?=
SAMPLES ?=
A ?=
B ?=
RUN ?=
TRACKER ?=
JOBS ?=
VERBOSE ?=
# A value given on the command line is never code: each of these holds its literal text (a `$(shell ...)` in it is
# not run, not even by make -n), is exported as ALOE_MAKE_<NAME> (never under its own name: WORLD_SIZE, MODEL, ...
# mean something to the tools), and reaches a script as one quoted argument, never pasted into a shell line
# (ARGS_PORT alone is split into words, as it lists options, but never run).
USER_VARS := RECIPE PROFILE WORLD_SIZE FORCE MODEL SUITE BACKEND LIMIT DATASET DATABASE FIXTURES SOURCES HUB_DIR \
	BASELINE JUDGE_URL LABELS LAUNCHER CLUSTER DRY_RUN LAYOUT WAIT FROM BASE NAME INSTRUCT CONFIG ARGS_PORT SAMPLES \
	A B RUN TRACKER JOBS VERBOSE
$(foreach v,$(USER_VARS),$(eval override $(v) := $$(value $(v))))
$(foreach v,$(USER_VARS),$(eval export ALOE_MAKE_$(v) := $$(value $(v))))
opt = $(if $($(1)),$(2) "$$ALOE_MAKE_$(1)")
ARGS = $(call opt,RECIPE,--recipe) $(call opt,PROFILE,--profile) $(call opt,WORLD_SIZE,--world-size) $(if $(FORCE),--force)
DATA_ARGS = $(if $(FIXTURES),--fixtures) $(call opt,SOURCES,--sources) $(call opt,HUB_DIR,--hub-dir)
EVAL_ARGS = $(call opt,MODEL,--model) --suite "$$ALOE_MAKE_SUITE" $(call opt,LIMIT,--limit) $(if $(FIXTURES),--local) $(call opt,JUDGE_URL,--judge-url) $(call opt,LABELS,--labels)
LOCAL_ARGS = $(call opt,JOBS,--jobs) $(if $(VERBOSE),--verbose)
REPRO_ARGS = $(call opt,PROFILE,--profile) --launcher "$$ALOE_MAKE_LAUNCHER" $(call opt,CLUSTER,--cluster) $(if $(DRY_RUN),--dry-run) $(call opt,LAYOUT,--layout) $(if $(FIXTURES),--fixtures) $(if $(WAIT),--wait) $(call opt,DATABASE,--database) $(if $(FORCE),--force) --suite "$$ALOE_MAKE_SUITE" $(LOCAL_ARGS)

.PHONY: help lock install install-base lint check-recipes tiny-kit data-check data sft merge dpo eval medprompt verify contamination diff-eval report export reproduce reproduce-8b reproduce-70b reproduce-qwen-7b reproduce-qwen-72b reproduce-alpha new-recipe cluster-up cluster-down bench bench-chain smoke test test-fast clean

help:          ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' Makefile | sed 's/:.*## /\t/'
lock:          ## regenerate envs/<stage>.lock (+ .cuda.lock) from envs/<stage>.in with uv (needs the package index)
	python3 -m scripts.drivers.lock
install:       ## every .venv/<stage> exactly as its lock (uv, hashes required; checked package for package)
	python3 -m scripts.drivers.install
install-base:  ## the orchestration + test environment only
	python3 -m scripts.drivers.install base
lint: install-base ## ruff: lint and format check of the Python code; lint-imports: the layers (.importlinter)
	.venv/base/bin/ruff check . && .venv/base/bin/ruff format --check . && .venv/base/bin/lint-imports --no-cache --no-logo
check-recipes: install ## validate recipes offline [RECIPE=dir] [WORLD_SIZE=n]
	$(PY) -m scripts.drivers.check_recipes $(call opt,RECIPE,--recipe) $(call opt,WORLD_SIZE,--world-size)
tiny-kit: install ## build the tiny model kit under runs/tiny-kit: Llama-3.1-shaped (base, instruct) and Qwen2.5-shaped (qwen-base, qwen-instruct)
	$(PY) -m scripts.make_tiny_kit $(if $(FORCE),--force)
data-check: install ## preflight: every data source and eval dataset opened, first rows only [RECIPE= SOURCES=authors|upstream HUB_DIR=]
	$(PY) -m scripts.drivers.data_check $(call opt,RECIPE,--recipe) $(call opt,SOURCES,--sources) $(call opt,HUB_DIR,--hub-dir)
data: install  ## data_prep: the SFT mix, DPO chunks and red-team set [RECIPE= PROFILE= FIXTURES=1 SOURCES=authors|upstream HUB_DIR=]
	$(PY) -m scripts.data $(ARGS) $(DATA_ARGS)
sft: install   ## axolotl SFT [RECIPE= PROFILE= WORLD_SIZE= FORCE=1]
	$(PY) -m scripts.sft $(ARGS)
merge: install ## mergekit DARE-TIES of the SFT output with Instruct [RECIPE= PROFILE= FORCE=1]
	$(PY) -m scripts.merge $(ARGS)
dpo: install   ## OpenRLHF DPO: stage 1 (5 chunks, chained) then stage 2 [RECIPE= PROFILE= FORCE=1]
	$(PY) -m scripts.dpo $(ARGS)
eval: install  ## lm-eval on MODEL= (hub id or path; default the recipe run's model) [SUITE=mcqa|open|all|general|safety|openmedqa|fields BACKEND=hf|vllm LIMIT=n FIXTURES=1 JUDGE_URL=judge server LABELS=fields file]
	$(PY) -m scripts.drivers.evaluate $(ARGS) $(EVAL_ARGS) --backend "$${ALOE_MAKE_BACKEND:-hf}"
medprompt: install ## Medprompt on DATASET= with MODEL= [RECIPE= PROFILE= DATABASE=jsonl LIMIT=n BACKEND=vllm|hf]
	$(PY) -m scripts.medprompt $(ARGS) $(call opt,BACKEND,--backend) $(call opt,MODEL,--model) $(call opt,DATASET,--dataset) $(call opt,DATABASE,--database) $(call opt,LIMIT,--limit)
verify: install-base ## measured against reported (results/reported.yaml), with tolerances [MODEL= SUITE= BASELINE=instruct model: the gain too]
	$(PY) -m scripts.verify $(call opt,RECIPE,--recipe) $(call opt,PROFILE,--profile) $(call opt,MODEL,--model) $(call opt,BASELINE,--baseline) --suite "$$ALOE_MAKE_SUITE"
contamination: install ## Table 9 test questions in the training data, accuracy on them vs the rest: SAMPLES=<lm-eval --log_samples folder> [SOURCES=authors|upstream|<normalized.jsonl> HUB_DIR=]
	$(PY) -m scripts.drivers.contamination --samples "$${ALOE_MAKE_SAMPLES:?SAMPLES= is required}" $(call opt,SOURCES,--sources) $(call opt,HUB_DIR,--hub-dir)
diff-eval: install-base ## two evaluations of one suite, question by question: the settings that differ, flipped answers, McNemar per task: A= B= (runs/<run>/eval-<suite>, a run folder, or an lm-eval --output_path)
	$(PY) -m scripts.drivers.diff_eval --a "$${ALOE_MAKE_A:?A= is required}" --b "$${ALOE_MAKE_B:?B= is required}"
export: install-base ## the release folder of a recipe run's final model: hard links to its files, model card README.md, hub eval metadata (model-index, .eval_results/) [RUN=runs/<run> FORCE=1]
	$(PY) -m scripts.drivers.export --run "$${ALOE_MAKE_RUN:?RUN= is required (runs/<recipe>[-<profile>])}" $(if $(FORCE),--force)
report: install-base ## one offline HTML page, under results/report/: a recipe run (RUN=runs/<recipe>[-<profile>], default the smoke run) or a model's evaluations (MODEL= as given to make eval): verify tables with Wilson intervals, every sample and judge's verdict, Medprompt, diff-eval comparisons, curves, provenance, GPU-hours and energy
	$(PY) -m scripts.drivers.report $(if $(MODEL),--model "$$ALOE_MAKE_MODEL",--run "$${ALOE_MAKE_RUN:-runs/aloe-beta-8b-cpu-tiny}")
smoke: install ## the whole chain on the tiny model on CPU, ending in a summary table [RECIPE=recipes/qwen2.5-aloe-beta-7b FORCE=1 JOBS=2 VERBOSE=1]
	$(PY) -m scripts.drivers.smoke $(call opt,RECIPE,--recipe) $(if $(FORCE),--force) $(LOCAL_ARGS)
new-recipe: install-base ## port a recipe to another base model: BASE=<hub id or dir> NAME=<folder> [FROM=recipes/aloe-beta-8b INSTRUCT= CONFIG=config.json ARGS_PORT="--sft-gpus 16 ..."]
	$(PY) -m scripts.drivers.new_recipe --from "$$ALOE_MAKE_FROM" --base "$$ALOE_MAKE_BASE" --name "$$ALOE_MAKE_NAME" $(call opt,INSTRUCT,--instruct) $(call opt,CONFIG,--config) $$ALOE_MAKE_ARGS_PORT
reproduce-8b: $(if $(DRY_RUN),install-base,install) ## the published 8B chain as a Slurm job graph [LAUNCHER=slurm|local CLUSTER= DRY_RUN=1 LAYOUT=sft=4x4 WAIT=1 DATABASE= JOBS= VERBOSE=1]
	$(PY) -m scripts.drivers.reproduce --recipe recipes/aloe-beta-8b $(REPRO_ARGS)
reproduce-70b: $(if $(DRY_RUN),install-base,install) ## the same for 70B
	$(PY) -m scripts.drivers.reproduce --recipe recipes/aloe-beta-70b $(REPRO_ARGS)
reproduce-qwen-7b: $(if $(DRY_RUN),install-base,install) ## the same for Qwen2.5-Aloe-Beta-7B
	$(PY) -m scripts.drivers.reproduce --recipe recipes/qwen2.5-aloe-beta-7b $(REPRO_ARGS)
reproduce-qwen-72b: $(if $(DRY_RUN),install-base,install) ## the same for Qwen2.5-Aloe-Beta-72B
	$(PY) -m scripts.drivers.reproduce --recipe recipes/qwen2.5-aloe-beta-72b $(REPRO_ARGS)
reproduce-alpha: $(if $(DRY_RUN),install-base,install) ## the same for Llama3-Aloe-8B-Alpha (mostly [C] values: see its README)
	$(PY) -m scripts.drivers.reproduce --recipe recipes/llama3-aloe-8b-alpha $(REPRO_ARGS)
reproduce: $(if $(DRY_RUN),install-base,install) ## the same for any recipe folder: RECIPE=recipes/<name>
	$(PY) -m scripts.drivers.reproduce --recipe "$${ALOE_MAKE_RECIPE:?RECIPE= is required}" $(REPRO_ARGS)
cluster-up:    ## a real 2-node Slurm cluster on this machine, for tests (root; installs Debian's slurm)
	scripts/slurm_local.sh start 2
cluster-down:  ## stop what cluster-up started
	scripts/slurm_local.sh stop
bench: tiny-kit ## the benchmarks under scripts/bench/ (figures are in the README)
	PYTHONPATH=$(CURDIR) .venv/infer/bin/python -m scripts.bench.medprompt_bench --kit runs/tiny-kit && $(PY) -m scripts.bench.data_prep_bench && $(PY) -m scripts.bench.json_read_bench && $(PY) -m scripts.bench.dedup_bench
bench-chain: install ## the smoke chain's wall and CPU use, cold and warm, byte-code on and off (about 40 min)
	$(PY) -m scripts.bench.chain_bench
test: install lint ## lint, then the test suite on both cores (GPU-only tests, *_gpu.py, are skipped without CUDA)
	$(PY) -m pytest tests -n 2 --durations=30
test-fast: install ## the unit tests only (-m unit; pytest.ini lists the kinds), on 2 cores (pytest-xdist): minutes, no lint
	$(PY) -m pytest tests -m unit -n 2
clean:         ## remove run outputs (keeps the environments)
	rm -rf runs
