"""common/memory: a process that handled large buffers on many threads gives
the memory back to the system (glibc), instead of keeping it in its arenas."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from common import memory

pytestmark = pytest.mark.skipif(memory._LIBC is None, reason="needs glibc's malloc")

BURST = textwrap.dedent(
    """
    import sys, threading, time
    from common.memory import keep_memory_in_check

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024

    if sys.argv[1] == "tuned":
        keep_memory_in_check()
    idle = rss_mb()

    def work():
        # Large and mid-sized buffers, freed in another order than allocated:
        # what decoding, resizing and serialising photos does to the heap.
        kept = []
        for round in range(12):
            kept.append(bytearray(20_000_000 + 100_000 * round))
            kept.append(bytearray(1_500_000 + 50_000 * round))
            if len(kept) > 6:
                kept.pop(0)
        kept.clear()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(3)
    print(f"{idle:.1f} {rss_mb():.1f}")
    """
)


def run_burst(mode: str) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", BURST, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1])


def test_a_tuned_process_returns_to_near_its_idle_size_after_a_burst():
    # Untuned (run_burst("plain")), the same burst leaves 50-60 MB behind here.
    idle, after = run_burst("tuned")
    assert after - idle < 15, f"idle {idle:.0f} MB, after the burst {after:.0f} MB"


def test_settings_take_and_trimming_runs():
    assert memory.tune_allocator() is True
    trimmer = memory.Trimmer(interval_s=0.01).start()
    trimmer.stop()
    memory.release_free_memory()  # must not fail whatever it finds
