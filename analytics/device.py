"""Compute device selection for the models: CUDA, then Apple MPS, then CPU."""
from __future__ import annotations

import functools
import glob
import os
import sys


class DeviceError(ValueError):
    """A device was asked for that this machine does not have."""


def _no_accelerator_here() -> bool:
    """True where torch cannot find a GPU whatever its build: Linux with no NVIDIA (``/dev/nvidia*``),
    AMD ROCm (``/dev/kfd``) or WSL (``/dev/dxg``) device nodes. Then the answer needs no import of
    torch, which takes seconds (the app's sidebar asks on the first page of every process)."""
    if not sys.platform.startswith("linux"):
        return False  # macOS (MPS), Windows: ask torch
    return not (glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/kfd") or os.path.exists("/dev/dxg"))


@functools.lru_cache(maxsize=1)
def available_devices() -> tuple[str, ...]:
    """Devices torch can use here, best first (always ends with 'cpu')."""
    if "torch" not in sys.modules and _no_accelerator_here():
        return ("cpu",)
    try:
        import torch
    except ImportError:  # torch is a dependency, but keep the library importable
        return ("cpu",)
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    found.append("cpu")
    return tuple(found)


def pick_device(requested: str | None = None) -> str:
    """The device to train on: ``requested`` if present, else the best available.

    ``requested`` may be None or 'auto' (best available), 'cuda', 'mps' or 'cpu'.
    """
    have = available_devices()
    if requested in (None, "", "auto"):
        return have[0]
    requested = requested.lower()
    base = requested.split(":")[0]
    if base not in ("cuda", "mps", "cpu"):
        raise DeviceError(f"unknown device {requested!r}: choose auto, cuda, mps or cpu")
    if base not in have:
        raise DeviceError(
            f"device {requested!r} was asked for but is not present on this machine "
            f"(available: {', '.join(have)})"
        )
    return requested


def describe_device(device: str) -> str:
    """A short human label, e.g. 'CUDA (NVIDIA H100)' or 'CPU (2 threads)' (torch's threads; while
    torch is not loaded, the CPU count it will use by default)."""
    if device == "cpu" and "torch" not in sys.modules:
        omp = os.environ.get("OMP_NUM_THREADS", "")
        n = int(omp) if omp.isdigit() and int(omp) > 0 else len(os.sched_getaffinity(0))
        return f"CPU ({n} threads)"
    import torch

    if device.startswith("cuda"):
        return f"CUDA ({torch.cuda.get_device_name(0)})"
    if device == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"
