"""`make bench`: answer latency (ours and a plain LangChain RAG chain) with the cost of each stage of ours,
`make run` to a usable page, retrieval at scale, ingestion throughput, memory and concurrent load through the
chat UI; median and p95 of every figure, beside the previous run's median.

    python benchmarks/bench.py                    # everything, ~25 min on 2 cores
    python benchmarks/bench.py --quick            # a smoke run: small sizes, few repeats
    python benchmarks/bench.py --only retrieval   # one section; it replaces that section in --out

Prints a table and writes results.json (raw numbers and the summary) and RESULTS.md beside it; each row shows
the median of the same row in the results.json it replaces (a run of the same kind, quick or full).
Every section runs in fresh processes on throw-away stores in a temporary folder (never vectorstore/).
Numbers, not asserts: run it on a quiet machine and compare runs side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

SECTIONS = ("answers", "startup", "retrieval", "ingestion", "load")
WORKERS = ("cold", "warm", "retrieval", "ingestion")
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results.json"
QUICK_OUT = HERE / "results" / "quick" / "results.json"  # git-ignored
RETRIEVAL_TIMEOUT_S = 3600


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the assistant: prints a table, writes results.json and RESULTS.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    parser.add_argument(
        "--only",
        choices=SECTIONS,
        action="append",
        help="Run only this section (repeatable); the other sections of --out are kept.",
    )
    parser.add_argument("--quick", action="store_true", help="Small sizes and few repeats: a smoke run (~6 min).")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"Results JSON; RESULTS.md is written beside it (default {DEFAULT_OUT.relative_to(HERE.parent)}, "
        f"with --quick {QUICK_OUT.relative_to(HERE.parent)}).",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder of stores and logs.")
    # internal: one measurement in a fresh process (see Workbench.worker)
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--chain", choices=("ours", "baseline"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, memory, Python and the load average (other work on the cores skews every figure)."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?"
        )
        meminfo = Path("/proc/meminfo").read_text().split()
        info["memory_gb"] = round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024**2, 1)
    except (OSError, ValueError, StopIteration):
        pass
    return info


def settings_info() -> dict[str, Any]:
    from assistant.config import Settings

    s = Settings()
    return {
        "llm": s.llm,
        "llm_threads": s.llm_threads,
        "llm_max_tokens": s.llm_max_tokens,
        "llm_context_window": s.llm_context_window,
        "embedding": s.embedding,
        "embedding_batch_size": s.embedding_batch_size,
        "top_k": s.top_k,
        "fetch_k": s.fetch_k,
        "chunk_size": s.chunk_size,
    }


def section_runners() -> dict[str, Callable[[Any], dict[str, Any]]]:
    from benchmarks import answers, ingestion, load, startup

    def retrieval(bench: Any) -> dict[str, Any]:
        return bench.worker("retrieval", timeout_s=900 if bench.quick else RETRIEVAL_TIMEOUT_S)

    return {
        "answers": answers.run,
        "startup": startup.run,
        "retrieval": retrieval,
        "ingestion": ingestion.run,
        "load": load.run,
    }


def run_worker(args: argparse.Namespace) -> None:
    """Internal: one measurement in this (fresh) process; its JSON goes to --result."""
    from benchmarks import answers, ingestion, retrieval

    work_dir: Path = args.work_dir
    if args.worker == "cold":
        data = answers.cold_worker(args.store, work_dir, args.chain)
    elif args.worker == "warm":
        data = answers.warm_worker(args.store, work_dir, args.quick)
    elif args.worker == "retrieval":
        data = retrieval.run(work_dir, args.quick)
    else:
        data = ingestion.worker(work_dir, args.quick)
    args.result.write_text(json.dumps(data, indent=1, default=str))


def _old(out: Path, quick: bool) -> dict[str, Any]:
    """The results.json this run replaces, if it is of the same kind (quick or full); else {}."""
    try:
        old = json.loads(out.read_text())
    except (OSError, ValueError):
        return {}
    return old if isinstance(old, dict) and bool(old.get("quick")) == quick else {}


def _previous(out: Path, quick: bool) -> dict[str, Any]:
    """The sections of an earlier run of the same kind (quick or full), kept when only some are re-run."""
    sections: dict[str, Any] = _old(out, quick).get("sections", {})
    return sections


def _notes(results: dict[str, Any]) -> list[str]:
    notes = []
    load = results["machine"].get("load_average_at_start") or [0]
    cores = results["machine"].get("cores") or 1
    if load[0] > 0.5 * cores:
        notes.append(
            f"The 1-minute load average was {load[0]} on {cores} cores when the run started: other work was "
            "competing for the CPU, so these numbers are pessimistic."
        )
    for name, section in results["sections"].items():
        before = section.get("load_average_before") if isinstance(section, dict) else None
        if before and before[0] > 0.5 * cores and name != next(iter(results["sections"])):
            notes.append(f"Load average {before[0]} when the {name} section started.")
    for run in results["sections"].get("startup", {}).get("runs", []):
        if not run.get("stopped_cleanly", True):
            notes.append(f"The `make run` server ({run['run']}) did not stop on SIGTERM within 30 s; it was killed.")
    return notes


def write(results: dict[str, Any], out: Path) -> Path:
    from benchmarks.report import markdown, summary_rows, with_previous

    rows = with_previous(summary_rows(results), results.get("previous"))
    results["summary"] = [row.to_dict() for row in rows]
    results["notes"] = _notes(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    md = out.with_name("RESULTS.md")
    md.write_text(markdown(results))
    return md


def run(args: argparse.Namespace) -> int:
    from benchmarks.common import Workbench, log
    from benchmarks.report import Row, header_lines, previous_medians, text_table

    out: Path = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    sections = [s for s in SECTIONS if not args.only or s in args.only]
    old = _old(out, args.quick)  # read once: every section's write below replaces the file
    results: dict[str, Any] = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "quick": args.quick,
        "machine": machine_info(),
        "settings": settings_info(),
        "sections": dict(old.get("sections", {})) if args.only else {},
        "previous": previous_medians(old, sections),
    }
    runners = section_runners()
    work_dir = Path(tempfile.mkdtemp(prefix="assistant-bench-"))
    log(f"benchmark scratch folder: {work_dir}")
    try:
        bench = Workbench(work_dir, args.quick)
        for name in sections:
            log(f"== {name} ==")
            before = [round(x, 2) for x in os.getloadavg()]
            started = time.perf_counter()
            try:
                section = runners[name](bench)
            except Exception as exc:
                traceback.print_exc()
                section = {"error": f"{type(exc).__name__}: {exc}"}
            section.update(
                quick=args.quick,
                seconds=round(time.perf_counter() - started, 1),
                load_average_before=before,
                finished=time.strftime("%Y-%m-%d %H:%M:%S %z"),
            )
            results["sections"][name] = section
            if name == "answers" and "model" in section:
                results["settings"]["model"] = section["model"]
            md = write(results, out)  # after every section: a late failure keeps the earlier results
    finally:
        if args.keep:
            log(f"kept {work_dir}")
        else:
            import shutil

            shutil.rmtree(work_dir, ignore_errors=True)
    if "model" not in results["settings"]:
        model = results["sections"].get("answers", {}).get("model")
        if model:
            results["settings"]["model"] = model
            md = write(results, out)
    print()
    print("\n".join(header_lines(results)))
    print()
    print(text_table([Row(**d) for d in results["summary"]]))
    for note in results["notes"]:
        print(f"note: {note}")
    print(f"\nwritten: {out} and {md}")
    failed = [name for name in sections if "error" in results["sections"][name]]
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return 0
    return run(args)


if __name__ == "__main__":
    # Run as a file: make the repository importable as `benchmarks`, not this folder as top-level modules.
    sys.path[0] = str(HERE.parent)
    sys.exit(main())
