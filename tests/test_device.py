"""Device choice without importing torch where no GPU can exist (the app's sidebar asks on every start)."""
from __future__ import annotations

import sys

from analytics import device


def test_no_gpu_device_node_means_cpu_without_importing_torch(monkeypatch):
    monkeypatch.setattr(device.sys, "platform", "linux")
    monkeypatch.setattr(device.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(device.os.path, "exists", lambda path: False)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    device.available_devices.cache_clear()
    try:
        assert device.available_devices() == ("cpu",)
        assert device.pick_device() == "cpu"
        assert device.describe_device("cpu").startswith("CPU (") and "threads)" in device.describe_device("cpu")
        assert "torch" not in sys.modules
    finally:
        device.available_devices.cache_clear()


def test_a_gpu_device_node_asks_torch(monkeypatch):
    monkeypatch.setattr(device.sys, "platform", "linux")
    monkeypatch.setattr(device.glob, "glob", lambda pattern: ["/dev/nvidia0"])
    assert not device._no_accelerator_here()
    monkeypatch.setattr(device.sys, "platform", "darwin")  # MPS: always torch's answer
    assert not device._no_accelerator_here()
