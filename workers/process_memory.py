"""What a process tree costs in memory: its private memory (USS), and its PSS beside it.

Private memory (USS: pages that no other process maps) is the tenant's own: it
is what its death would give back, and it does not move when a neighbour
starts or stops. PSS charges each shared page (libraries, Chromium's binary,
the page cache of fonts) to all its mappers in equal parts, so a tenant's PSS
falls when another tenant starts and rises when one stops. Every limit and
per-tenant figure uses private memory; PSS is only printed beside it.

The USS of a tree is the sum of its processes' USS, so pages two processes of
the same tree share (Chromium's zygote's copy-on-write pages, the shared
memory between the browser and its renderers) are counted in neither: the
figure is a floor of what the tree alone holds. A page is private only while no
other process maps it: a file or library that only this tenant maps counts as
its own until a second process maps it too (then it is shared and leaves the
USS of both), which is what it would give back.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

MB = 1024 * 1024


@dataclass(frozen=True)
class TreeMemory:
    private_mb: float  # the sum of the tree's USS
    pss_mb: float
    processes: int


def tree_memory(pid: int) -> TreeMemory:
    """Private memory (USS) and PSS of process `pid` and all of its descendants."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return TreeMemory(0.0, 0.0, 0)
    uss = pss = counted = 0
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        uss, pss, counted = uss + info.uss, pss + info.pss, counted + 1
    return TreeMemory(uss / MB, pss / MB, counted)
