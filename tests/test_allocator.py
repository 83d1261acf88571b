"""glibc allocator tuning: large tensors are reused from the heap instead of mapped and faulted in at every call."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

glibc_only = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the tuning applies to glibc only")

# Allocates, touches and frees a 64 MiB tensor 20 times; prints whether tuning applied and the minor page faults.
SCRIPT = """
import resource, sys, torch
from hadna.utils.allocator import tune_cpu_allocator
tuned = tune_cpu_allocator() if sys.argv[1] == "tune" else False
for _ in range(3):                # warm-up: the heap grows to hold the block (faulted in either way)
    x = torch.ones(16 << 20)
    del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    x = torch.ones(16 << 20)      # 64 MiB, written in full
    del x
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _run(mode: str, env_switch: str | None = None) -> tuple[bool, int]:
    env = {k: v for k, v in os.environ.items() if k != "HADNA_MALLOC_TUNING"}
    if env_switch is not None:
        env["HADNA_MALLOC_TUNING"] = env_switch
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, text=True, check=True)
    tuned, faults = out.stdout.split()
    return tuned == "True", int(faults)


@glibc_only
def test_tuning_stops_the_page_faults_of_repeated_large_allocations():
    plain_tuned, plain = _run("plain")
    tuned, faults = _run("tune")
    assert not plain_tuned and tuned
    pages = 20 * (64 << 20) // 4096  # 327,680 pages if every allocation is faulted in again
    assert plain > 0.9 * pages, plain  # glibc's default: mmap + munmap every time
    # tuned: the freed block is reused from the heap (a few rounds still grow it past small Python objects
    # allocated above the block: 4 of 20 here)
    assert faults < 0.5 * pages, faults


@glibc_only
def test_the_environment_switch_turns_it_off():
    tuned, faults = _run("tune", env_switch="0")
    assert not tuned and faults > 0.9 * 20 * (64 << 20) // 4096


def test_the_cli_tunes_once_per_process(monkeypatch):
    import hadna.utils.allocator as allocator

    calls = []
    monkeypatch.setattr(allocator, "_tuned", None)
    monkeypatch.setattr(allocator, "_glibc", lambda: calls.append(1) or None)
    assert allocator.tune_cpu_allocator() is False and allocator.tune_cpu_allocator() is False
    assert calls == [1]  # not glibc: decided once, left alone
