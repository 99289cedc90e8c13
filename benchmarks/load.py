"""Concurrent load on both doors of the running app: `assistant serve` on loopback, gradio_client users of the
chat (/ask) and OpenAI-API clients (streamed POST /v1/chat/completions), all at once.

Each user asks its questions one after another, each as a new chat; every user starts at the same time. One chat
user presses Stop once its first answer is being written, and one OpenAI client goes away during its first
answer (its stream has begun); neither counts as an error, and every other question must be answered completely
(a final answer or refusal, not a draft, an error box or an error event). The app answers one question at a time
(one model), so latency here includes waiting in the queue; the API's wait bound is raised to the run's deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
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

USERS = 16  # gradio_client users of the chat
OPENAI_CLIENTS = 4
QUESTIONS_PER_USER = 1
QUICK_USERS = 4
QUICK_OPENAI_CLIENTS = 2
QUICK_QUESTIONS_PER_USER = 1
DISCONNECT_AFTER_S = 2.0  # the leaving OpenAI client reads the stream's first chunk, waits this long, closes it
START_TIMEOUT_S = 300
DEADLINE_S = 1800  # the whole load run, all users
QUICK_DEADLINE_S = 400
STOP_TIMEOUT_S = 30


def _text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else message
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def failure_of(final: Any) -> str | None:
    """Why a finished /ask call is a failure (no answer, an unfinished draft, or the UI's error box), or None."""
    try:
        chat = final[1]
        last = _text(chat[-1])
    except (TypeError, IndexError, KeyError):
        return f"unexpected result {str(final)[:200]!r}"
    if 'class="ka-error"' in last:
        return f"error shown: {last[:200]}"
    if "ka-drafting" in last or not last.strip():
        return f"unfinished answer: {last[:200]}"
    return None


def was_stopped(final: Any) -> bool:
    """Whether a finished /ask call ended in the chat's 'Stopped' notice."""
    try:
        last = _text(final[1][-1])
    except (TypeError, IndexError, KeyError):
        return False
    return 'class="ka-notice"' in last and "Stopped" in last


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


def drive(
    url: str,
    users: int,
    per_user: int,
    deadline_s: float,
    openai_clients: int = 0,
    stop_one: bool = False,
    disconnect_one: bool = False,
    disconnect_after_s: float = DISCONNECT_AFTER_S,
    questions: Sequence[str] = QUESTIONS,
) -> dict[str, Any]:
    """All chat users and OpenAI clients at once; each request's latency, outcome and error; nothing runs past
    the deadline. `stop_one`: chat user 0 presses Stop on its first answer; `disconnect_one`: OpenAI client 0
    closes its first stream `disconnect_after_s` after it began. User u asks questions[(u + j) % len] j-th."""
    url = url.rstrip("/")
    end = time.monotonic() + deadline_s
    requests: list[dict[str, Any]] = []
    lock = threading.Lock()
    go = threading.Barrier(users + openai_clients)

    def remaining() -> float:
        return max(1.0, end - time.monotonic())

    def new_record(door: str, u: int, j: int, role: str) -> dict[str, Any]:
        return {"door": door, "user": u, "question": (u + j) % len(questions), "role": role, "error": None}

    def finish(record: dict[str, Any], started: float) -> None:
        record["latency_s"] = time.perf_counter() - started
        with lock:
            requests.append(record)
        log(
            f"  {record['door']} {record['user']} q{record['question']} ({record['role']}): "
            f"{record['latency_s']:.1f} s {record.get('outcome', '')}"
            + (f" ERROR {record['error']}" if record["error"] else "")
        )

    def chat_user(u: int) -> None:
        from gradio_client import Client

        client = Client(url + "/", verbose=False, httpx_kwargs={"timeout": 60})
        try:
            go.wait(timeout=120)
            for j in range(per_user):
                role = "stopper" if stop_one and u == 0 and j == 0 else "asker"
                record = new_record("chat", u, j, role)
                started = time.perf_counter()
                try:
                    client.predict(api_name="/new_chat")  # a fresh conversation: no follow-up rewriting
                    started = time.perf_counter()
                    job = client.submit(questions[record["question"]], [], [], "", "", api_name="/ask")
                    if role == "stopper":
                        _stop_when_drafting(client, job, end)
                    final = job.result(timeout=remaining())
                    if role == "stopper" and was_stopped(final):
                        record["outcome"] = "stopped"
                    else:
                        record["error"] = failure_of(final)
                        record["outcome"] = "answered" if record["error"] is None else "error"
                        if role == "stopper":
                            record["stop_too_late"] = True  # answered before Stop could be pressed
                except Exception as exc:
                    record["error"], record["outcome"] = f"{type(exc).__name__}: {exc}"[:300], "error"
                finish(record, started)
                if time.monotonic() >= end:
                    break
        finally:
            client.close()

    def openai_client(u: int) -> None:
        import openai

        client = openai.OpenAI(base_url=url + "/v1", api_key=_api_key(), max_retries=0, timeout=remaining())
        try:
            model = client.models.list().data[0].id
            go.wait(timeout=120)
            for j in range(per_user):
                role = "leaver" if disconnect_one and u == 0 and j == 0 else "asker"
                record = new_record("openai", u, j, role)
                started = time.perf_counter()
                try:
                    stream = client.chat.completions.create(
                        model=model,
                        messages=[{"role": "user", "content": questions[record["question"]]}],
                        stream=True,
                    )
                    if role == "leaver":
                        next(iter(stream))  # the stream has begun (its role chunk): the question is in
                        time.sleep(disconnect_after_s)
                        stream.close()
                        record["outcome"] = "disconnected"
                    else:
                        text, finish_reason = "", None
                        for chunk in stream:
                            if chunk.choices:
                                text += chunk.choices[0].delta.content or ""
                                finish_reason = chunk.choices[0].finish_reason or finish_reason
                        if finish_reason != "stop" or not text.strip():
                            record["error"] = f"unfinished answer (finish_reason {finish_reason!r}): {text[:200]!r}"
                        record["outcome"] = "answered" if record["error"] is None else "error"
                except Exception as exc:
                    record["error"], record["outcome"] = f"{type(exc).__name__}: {exc}"[:300], "error"
                finish(record, started)
                if time.monotonic() >= end:
                    break
        finally:
            client.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=users + openai_clients) as pool:
        futures = [pool.submit(chat_user, u) for u in range(users)]
        futures += [pool.submit(openai_client, u) for u in range(openai_clients)]
        for future in futures:
            try:
                future.result(timeout=remaining() + 60)
            except Exception as exc:
                failed = {"door": "?", "user": -1, "question": -1, "role": "asker", "outcome": "error"}
                requests.append({**failed, "error": f"{type(exc).__name__}: {exc}", "latency_s": None})
    wall = time.perf_counter() - started
    answered = [r for r in requests if r["role"] == "asker" and r["error"] is None]
    special = {r["role"]: r for r in requests if r["role"] != "asker"}
    expected = (users + openai_clients) * per_user
    expected -= int(stop_one and users > 0) + int(disconnect_one and openai_clients > 0)
    return {
        "users": users,
        "openai_clients": openai_clients,
        "questions_per_user": per_user,
        "requests": requests,
        "expected": expected,  # the questions that must be answered: all but the stopped and the abandoned one
        "completed": len(answered),
        "errors": expected - len(answered),  # failed, unfinished, or never asked before the deadline
        "stopped": _outcome(special.get("stopper")),
        "disconnected": _outcome(special.get("leaver")),
        "wall_s": wall,
        "latency_s": summarize([r["latency_s"] for r in answered]),
        "latency_by_door_s": {
            door: summarize([r["latency_s"] for r in answered if r["door"] == door]) for door in ("chat", "openai")
        },
        "throughput_answers_per_min": 60 * len(answered) / wall if wall else None,
    }


def _outcome(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """What became of the stopped or the abandoned question (None when there was none)."""
    if record is None:
        return None
    return {k: record[k] for k in ("outcome", "error", "latency_s", "stop_too_late") if k in record}


def _stop_when_drafting(client: Any, job: Any, end: float) -> None:
    """Press Stop once the chat shows the answer being written (give up when the job ends or time is up)."""
    while time.monotonic() < end and not job.done():
        outputs = job.outputs()
        if outputs and "Drafting" in _text(outputs[-1][1][-1]):
            client.predict(api_name="/stop")
            return
        time.sleep(0.05)


def _api_key() -> str:
    """The OpenAI-compatible API's key when the environment sets one (the app on loopback needs none)."""
    return os.environ.get("ASSISTANT_API_KEY") or "unused-on-loopback"


def run(bench: Workbench) -> dict[str, Any]:
    """The load section: start the app on the seed store, drive it, read its peak memory, stop it."""
    store = bench.seed_store()
    users = QUICK_USERS if bench.quick else USERS
    clients = QUICK_OPENAI_CLIENTS if bench.quick else OPENAI_CLIENTS
    per_user = QUICK_QUESTIONS_PER_USER if bench.quick else QUESTIONS_PER_USER
    deadline = QUICK_DEADLINE_S if bench.quick else DEADLINE_S
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = bench_env(store)
    env["ASSISTANT_FEEDBACK_PATH"] = str(bench.work_dir / "feedback.jsonl")
    env["ASSISTANT_OPENAI_API"] = "true"
    env["ASSISTANT_API_QUEUE_TIMEOUT_S"] = str(deadline)  # waiting for the one model is latency, not "busy"
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
        log(f"load: serving after {startup_s:.1f} s; {users} chat users + {clients} OpenAI clients x {per_user} ...")
        result = drive(url, users, per_user, deadline, clients, stop_one=True, disconnect_one=True)
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
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return False
