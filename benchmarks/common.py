"""Shared pieces of the benchmark: statistics, memory readings, settings for throw-away stores, ports."""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = REPO_ROOT / "seeds"

# The fixed questions of the answer and load benchmarks (all answerable from the seeds).
QUESTIONS = (
    "When was the U.S.-South Korea working group set up?",
    "Who is Lee Do-hoon's U.S. counterpart?",
    "Where did Pompeo and Kang Kyung-wha meet in February 2019?",
    "What did Lee In-young propose to improve the working group?",
    "How often was the working group expected to meet?",
    "Who is slated to open the regular consultative meeting for South Korea in December 2025?",
)


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct` percentile by linear interpolation between closest ranks (numpy's default method)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {pct}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * pct / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """n, median, p95, min and max of the values that are not None (None fields when there are none)."""
    kept = [float(v) for v in values if v is not None]
    if not kept:
        return {"n": 0, "median": None, "p95": None, "min": None, "max": None}
    return {
        "n": len(kept),
        "median": statistics.median(kept),
        "p95": percentile(kept, 95),
        "min": min(kept),
        "max": max(kept),
    }


def peak_rss_mb() -> float:
    """This process's resident-memory high-water mark (ru_maxrss, KiB on Linux), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def process_peak_rss_mb(pid: int) -> float | None:
    """Another process's resident-memory high-water mark (VmHWM in /proc), in MB; None if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except (OSError, ValueError, IndexError):
        return None
    return None


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_settings(work_dir: Path, name: str, **overrides: Any) -> Any:
    """Settings for a throw-away store `work_dir/name` (never the user's vectorstore/); the rest as configured."""
    from assistant.config import Settings

    values: dict[str, Any] = {
        "persist_dir": work_dir / name,
        "feedback_path": work_dir / "feedback.jsonl",
        "chroma_url": None,
    }
    values.update(overrides)
    return Settings(**values)


def bench_env(persist_dir: Path) -> dict[str, str]:
    """The environment for a child process of the CLI that must use `persist_dir` as its store."""
    env = dict(os.environ)
    env.pop("ASSISTANT_CHROMA_URL", None)
    env["ASSISTANT_PERSIST_DIR"] = str(persist_dir)
    return env


BENCH_FILE = Path(__file__).resolve().parent / "bench.py"


def assistant_command() -> list[str]:
    """How to run the `assistant` CLI of this environment (the console script beside the interpreter)."""
    script = Path(sys.executable).with_name("assistant")
    return [str(script)] if script.exists() else [sys.executable, "-m", "assistant.cli"]


def log(message: str) -> None:
    """Progress on stderr (stdout carries the final table)."""
    print(message, file=sys.stderr, flush=True)


def run_bounded(cmd: Sequence[str], timeout_s: float, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Run a command in its own process group; on timeout kill that group (and only it) and raise."""
    proc = subprocess.Popen(list(cmd), start_new_session=True, **kwargs)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise RuntimeError(f"{' '.join(cmd[:4])} ... took longer than {timeout_s:.0f} s and was stopped") from None
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode)


@dataclass
class Workbench:
    """One benchmark run: its scratch folder, its size (quick or full), and child processes on demand."""

    work_dir: Path
    quick: bool = False
    _seed_store: Path | None = field(default=None, init=False)

    def worker(self, name: str, timeout_s: float, **options: str) -> dict[str, Any]:
        """Run `bench.py --worker name` in a fresh process and return the JSON it wrote."""
        result = self.work_dir / f"{name}-{uuid.uuid4().hex[:8]}.json"
        cmd = [sys.executable, str(BENCH_FILE), "--worker", name, "--work-dir", str(self.work_dir)]
        cmd += ["--result", str(result)] + (["--quick"] if self.quick else [])
        for key, value in options.items():
            cmd += [f"--{key.replace('_', '-')}", value]
        spawned_at = time.time()  # wall clock, for comparison with the worker's own readings
        started = time.perf_counter()
        done = run_bounded(cmd, timeout_s)
        if done.returncode != 0 or not result.exists():
            raise RuntimeError(f"the {name} worker failed (exit code {done.returncode}); its error is printed above")
        data: dict[str, Any] = json.loads(result.read_text())
        data["process_wall_s"] = round(time.perf_counter() - started, 3)
        data["spawned_at"] = spawned_at
        return data

    def cli_ingest(self, persist_dir: Path, timeout_s: float = 900) -> float:
        """Seconds a whole `assistant ingest seeds/` process takes on `persist_dir`."""
        started = time.perf_counter()
        done = run_bounded(
            [*assistant_command(), "ingest", str(SEEDS_DIR)],
            timeout_s,
            env=bench_env(persist_dir),
            stdout=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise RuntimeError(f"`assistant ingest {SEEDS_DIR}` failed with exit code {done.returncode}")
        return time.perf_counter() - started

    def seed_store(self) -> Path:
        """A store holding the seeds (indexed once per run by the CLI) for the answer and load benchmarks."""
        if self._seed_store is None:
            path = self.work_dir / "seeds-store"
            log(f"indexing the seeds into {path} ...")
            self.cli_ingest(path)
            self._seed_store = path
        return self._seed_store
