"""Concurrent load through the running chat UI: `assistant serve` on loopback, N gradio_client users at once.

Each user asks its questions one after another, each as a new chat; every user starts at the same time.
The app answers one question at a time (one model), so latency here includes waiting in Gradio's queue.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.common import (
    QUESTIONS,
    Workbench,
    assistant_command,
    bench_env,
    free_port,
    log,
    process_peak_rss_mb,
    summarize,
)

USERS = 8
QUESTIONS_PER_USER = 3
QUICK_USERS = 2
QUICK_QUESTIONS_PER_USER = 1
START_TIMEOUT_S = 300
DEADLINE_S = 1200  # the whole load run, all users
QUICK_DEADLINE_S = 300
STOP_TIMEOUT_S = 30


def _text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else message
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def failure_of(final: Any) -> str | None:
    """Why a finished /ask call is a failure (no answer, or the UI's error box), or None."""
    try:
        chat = final[1]
        last = _text(chat[-1])
    except (TypeError, IndexError, KeyError):
        return f"unexpected result {str(final)[:200]!r}"
    if 'class="ka-error"' in last:
        return f"error shown: {last[:200]}"
    return None


def wait_until_serving(url: str, proc: subprocess.Popen[bytes], timeout_s: float, log_file: Path) -> float:
    """Seconds until the UI answers HTTP; raises if the process exits or the timeout passes."""
    import httpx

    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"`assistant serve` exited with {proc.returncode}: see {log_file}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"`assistant serve` did not answer at {url} within {timeout_s:.0f} s: see {log_file}")


def drive(url: str, users: int, per_user: int, deadline_s: float) -> dict[str, Any]:
    """All users at once; per-request latency and errors; nothing runs past the deadline."""
    from gradio_client import Client

    end = time.monotonic() + deadline_s
    requests: list[dict[str, Any]] = []
    lock = threading.Lock()
    go = threading.Barrier(users)

    def user(u: int) -> None:
        client = Client(url, verbose=False, httpx_kwargs={"timeout": 60})
        try:
            go.wait(timeout=120)
            for j in range(per_user):
                q = (u + j) % len(QUESTIONS)
                record: dict[str, Any] = {"user": u, "question": q, "error": None}
                started = time.perf_counter()
                try:
                    client.predict(api_name="/new_chat")  # a fresh conversation: no follow-up rewriting
                    started = time.perf_counter()
                    job = client.submit(QUESTIONS[q], [], [], "", "", api_name="/ask")
                    final = job.result(timeout=max(1.0, end - time.monotonic()))
                    record["error"] = failure_of(final)
                except Exception as exc:
                    record["error"] = f"{type(exc).__name__}: {exc}"[:300]
                record["latency_s"] = time.perf_counter() - started
                with lock:
                    requests.append(record)
                log(
                    f"  user {u} q{q}: {record['latency_s']:.1f} s"
                    + (f" ERROR {record['error']}" if record["error"] else "")
                )
                if time.monotonic() >= end:
                    break
        finally:
            client.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=users) as pool:
        futures = [pool.submit(user, u) for u in range(users)]
        for future in futures:
            try:
                future.result(timeout=max(1.0, end - time.monotonic()) + 60)
            except Exception as exc:
                requests.append(
                    {"user": -1, "question": -1, "error": f"{type(exc).__name__}: {exc}", "latency_s": None}
                )
    wall = time.perf_counter() - started
    completed = sum(1 for r in requests if r["error"] is None)
    return {
        "users": users,
        "questions_per_user": per_user,
        "requests": requests,
        "completed": completed,
        "errors": users * per_user - completed,  # failed, or never asked before the deadline
        "wall_s": wall,
        "latency_s": summarize([r["latency_s"] for r in requests if r["error"] is None]),
        "throughput_answers_per_min": 60 * sum(1 for r in requests if r["error"] is None) / wall if wall else None,
    }


def run(bench: Workbench) -> dict[str, Any]:
    """The load section: start the app on the seed store, drive it, read its peak memory, stop it."""
    store = bench.seed_store()
    users = QUICK_USERS if bench.quick else USERS
    per_user = QUICK_QUESTIONS_PER_USER if bench.quick else QUESTIONS_PER_USER
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = bench_env(store)
    env["ASSISTANT_FEEDBACK_PATH"] = str(bench.work_dir / "feedback.jsonl")
    log_file = bench.work_dir / "serve.log"
    log(f"load: starting `assistant serve` on {url} ...")
    with log_file.open("ab") as out:
        proc = subprocess.Popen(
            [*assistant_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        startup_s = wait_until_serving(url, proc, START_TIMEOUT_S, log_file)
        log(f"load: serving after {startup_s:.1f} s; {users} users x {per_user} questions ...")
        result = drive(url, users, per_user, QUICK_DEADLINE_S if bench.quick else DEADLINE_S)
        result["server_peak_rss_mb"] = process_peak_rss_mb(proc.pid)
        result["startup_s"] = startup_s
    finally:
        stopped = _stop(proc)
    result["stopped_cleanly"] = stopped
    result["method"] = __doc__.split("\n\n", 1)[1].replace("\n", " ").strip() if __doc__ else ""
    return result


def _stop(proc: subprocess.Popen[bytes]) -> bool:
    """SIGTERM (the app closes itself), then SIGKILL to the process group if it lingers; True if clean."""
    if proc.poll() is not None:
        return proc.returncode == 0
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
        return True
    except subprocess.TimeoutExpired:
        import os

        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return False
