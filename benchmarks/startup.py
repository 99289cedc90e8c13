"""`make run` to a usable page: what `make run` does on an installed venv, timed from its launch.

`make run` runs `assistant ingest seeds/` and then `assistant serve`; here the same two commands run from the
repository folder on a throw-away store and port (ASSISTANT_PERSIST_DIR, ASSISTANT_PORT, ASSISTANT_HOST,
ASSISTANT_FEEDBACK_PATH), twice: first on an empty store (the first `make run` on a machine), then again on
the store it left (every later one). Each is timed from launching the ingest until the chat page answers
HTTP 200, until gradio's /config answers, and until the first question asked through gradio_client (/ask,
a new chat) has its final answer; then the server is stopped with SIGTERM (SIGKILL to its process group if
it lingers).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO_ROOT, Workbench, assistant_command, bench_env, free_port, log, run_bounded
from benchmarks.load import START_TIMEOUT_S, _stop, failure_of, wait_until_serving

RUNS = ("empty store", "store already indexed")
QUESTION = "Who is Jeong Yeon-doo?"
INGEST_TIMEOUT_S = 900
ANSWER_TIMEOUT_S = 600


def make_run(persist_dir: Path, work_dir: Path, name: str) -> dict[str, Any]:
    """One `make run` on `persist_dir`: seconds from launch to the ingest's end, the page, /config and the
    first answer; whether the first answer was a failure and whether the server stopped cleanly."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = bench_env(persist_dir)
    env.update(
        ASSISTANT_HOST="127.0.0.1", ASSISTANT_PORT=str(port), ASSISTANT_FEEDBACK_PATH=str(work_dir / "feedback.jsonl")
    )
    log_file = work_dir / f"make-run-{name.replace(' ', '-')}.log"
    record: dict[str, Any] = {"run": name, "port": port}
    launched = time.monotonic()
    with log_file.open("ab") as out:
        done = run_bounded(
            [*assistant_command(), "ingest", "seeds/"],
            INGEST_TIMEOUT_S,
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        if done.returncode != 0:
            raise RuntimeError(f"`assistant ingest seeds/` failed with exit code {done.returncode}: see {log_file}")
        record["ingest_s"] = time.monotonic() - launched
        proc = subprocess.Popen(
            [*assistant_command(), "serve"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_serving(url, proc, START_TIMEOUT_S, log_file)
        record["page_s"] = time.monotonic() - launched
        wait_until_serving(url + "config", proc, START_TIMEOUT_S, log_file)
        record["config_s"] = time.monotonic() - launched
        record.update(first_answer(url))
        record["answer_s"] = time.monotonic() - launched
    finally:
        record["stopped_cleanly"] = _stop(proc)
    return record


def first_answer(url: str) -> dict[str, Any]:
    """Ask QUESTION in a new chat through gradio_client; why it failed (None if it did not), and what it said."""
    from gradio_client import Client

    try:
        client = Client(url, verbose=False, httpx_kwargs={"timeout": 60})
        try:
            final = client.submit(QUESTION, [], [], "", "", api_name="/ask").result(timeout=ANSWER_TIMEOUT_S)
        finally:
            client.close()
    except Exception as exc:  # reported as the row's failure; the page's time still stands
        return {"answer_error": f"{type(exc).__name__}: {exc}"[:300], "answer": ""}
    try:
        last = final[1][-1]
        text = str(last.get("content") if isinstance(last, dict) else last)
    except (TypeError, IndexError, KeyError):
        text = str(final)
    return {"answer_error": failure_of(final), "answer": text[:300]}


def run(bench: Workbench) -> dict[str, Any]:
    """The startup section: `make run` on an empty store, then again on the store it indexed."""
    store = bench.work_dir / "make-run-store"
    runs = []
    for name in RUNS:
        log(f"startup: `make run` ({name}) ...")
        record = make_run(store, bench.work_dir, name)
        log(
            f"  ingest done {record['ingest_s']:.1f} s, page {record['page_s']:.1f} s,"
            f" /config {record['config_s']:.1f} s, first answer {record['answer_s']:.1f} s"
            + (f" ERROR {record['answer_error']}" if record["answer_error"] else "")
        )
        runs.append(record)
    return {"method": __doc__.split("\n\n", 1)[1].replace("\n", " ").strip() if __doc__ else "", "runs": runs}
