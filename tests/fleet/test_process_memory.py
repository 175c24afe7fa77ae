"""A tenant's memory is its own: private memory (USS) does not move with its neighbours, PSS does."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness import wait_for
from workers.process_memory import tree_memory

SHARED_MB = 64
# Maps the shared file, touches every page, then allocates and touches its own PRIVATE_MB.
MAPPER = """
import mmap, sys
with open(sys.argv[1], "r+b") as f:
    shared = mmap.mmap(f.fileno(), 0)
total = 0
for offset in range(0, len(shared), 4096):
    total += shared[offset]
own = bytearray(int(sys.argv[2]) * 1024 * 1024)
for offset in range(0, len(own), 4096):
    own[offset] = 1
print("ready", flush=True)
sys.stdin.read()
"""


@contextmanager
def mapper(shared: Path, private_mb: int) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", MAPPER, str(shared), str(private_mb)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_tenants_private_memory_does_not_change_with_its_neighbours_but_pss_does():
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        shared = Path(tmp) / "shared"
        shared.write_bytes(b"\1" * SHARED_MB * 1024 * 1024)  # tmpfs: the pages stay resident
        # Like Chromium's binary and libraries: mapped by the tenant and at least one other process.
        with mapper(shared, 0), mapper(shared, 32) as tenant:
            few = tree_memory(tenant.pid)
            with mapper(shared, 0), mapper(shared, 0), mapper(shared, 0):
                time.sleep(0.2)
                many = tree_memory(tenant.pid)
    assert few.processes == many.processes == 1
    assert 32 <= few.private_mb < 32 + 24  # its own bytes and the interpreter, not the shared file
    assert abs(many.private_mb - few.private_mb) < 2
    # Its PSS share of the 64 MB file falls from a half to a fifth when three more processes map it.
    assert few.pss_mb - many.pss_mb > 0.25 * SHARED_MB


def test_the_tree_sums_every_descendant():
    script = ("import subprocess, sys, time\n"
              "kids = [subprocess.Popen([sys.executable, '-c', 'import time; b = bytearray(16 << 20); "
              "b[::4096] = bytes(len(b[::4096])); time.sleep(60)']) for _ in range(2)]\n"
              "time.sleep(60)\n")
    root = subprocess.Popen([sys.executable, "-c", script])
    try:
        used = wait_for(lambda: (m := tree_memory(root.pid)).processes == 3 and m.private_mb > 2 * 16 and m,
                        20, what="the root and its two children (16 MB each) measured")
        assert used.pss_mb >= used.private_mb
    finally:
        import psutil

        for proc in psutil.Process(root.pid).children(recursive=True):
            proc.kill()
        root.kill()
        root.wait()


def test_a_process_that_is_gone_measures_nothing():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert tree_memory(proc.pid).processes == 0
