"""Concurrent load on the running app: `assistant serve` on loopback, gradio_client users of the chat (/ask),
then the checks of Stop and of an OpenAI-API client (streamed POST /v1/chat/completions) leaving mid-stream.

Each chat user asks its questions one after another, each as a new chat; every user starts at the same time.
The app answers one question at a time (one model), so each question's wait splits into its queue wait (from
submitting it until gradio's job status says it is being processed, read every 0.05 s) and its work (from then
until the final answer); throughput is answers per minute of the whole run. Then the checks, together: one chat
user presses Stop once its answer is being written, one OpenAI client goes away during its answer (its stream
has begun) and one more asks a question to the end. Neither the stopped nor the abandoned question counts as an
error; every other question must be answered completely (a final answer or refusal, not a draft, an error box
or an error event). The API's wait bound is raised to the run's deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
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

# Distinct questions (all answerable from the seeds), none asked twice in one run: the model would restore a
# repeated prompt whole from its RAM cache. The main run takes them from the front, the checks from the back.
LOAD_QUESTIONS = (
    *QUESTIONS,
    "In which city did the allies' North Korea working group hold its inaugural session?",
    "Which South Korean foreign ministry spokesman hoped in November 2018 that regular meetings would help?",
    "What kind of ceremony had the two Koreas agreed to hold before the end of 2018 to link their railways?",
    "What worry was voiced in South Korea about the working group when it was created?",
    "How many times did Donald Trump and Kim Jong-un meet between June 2018 and June 2019?",
    "In August 2020, what areas did the State Department say Washington and Seoul regularly coordinate on?",
    "What day was tentatively set for the first session of the new Seoul-Washington consultations?",
    "Who was Stephen Biegun's North Korean counterpart during his early-2019 visit to Pyongyang?",
    "How long did Biegun's visit to Pyongyang last ahead of the Hanoi summit?",
    "Under what condition did Biegun say in January 2019 that sanctions on North Korea would be removed?",
    "Which phrase was noticeably absent from a recent U.S. security strategy document?",
    "How has Pyongyang responded to the Lee Jae Myung government's peace overtures?",
    "When and where did Trump first meet Kim Jong Un?",
)
CHECK_QUESTIONS = 3  # the checks' questions: the last three of LOAD_QUESTIONS
USERS = 8  # gradio_client users of the chat, the main measurement
QUESTIONS_PER_USER = 2
QUICK_USERS = 2
QUICK_QUESTIONS_PER_USER = 1
CHECK_OPENAI_CLIENTS = 2  # in the checks: one leaves mid-stream, one asks to the end (beside one chat Stop)
DISCONNECT_AFTER_S = 2.0  # the leaving OpenAI client reads the stream's first chunk, waits this long, closes it
START_TIMEOUT_S = 300
DEADLINE_S = 1800  # the main run, all users
QUICK_DEADLINE_S = 400
CHECKS_DEADLINE_S = 400
STOP_TIMEOUT_S = 30
POLL_S = 0.05  # how often a chat user reads its job's status
# gradio_client status codes that mean the server is processing the job (FINISHED is left out: job.status()
# reports it, with the time of asking, once the job is done, however the job went)
PROCESSING_CODES = frozenset({"PROCESSING", "PROGRESS", "ITERATING", "LOG"})


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


def question_index(slot: int, j: int, per_user: int, count: int) -> int:
    """Which question the asker in `slot` (chat users first, then OpenAI clients) asks j-th: one block of
    `per_user` questions per asker, so none repeats while slots x per_user <= count."""
    return (slot * per_user + j) % count


def queue_and_work(submitted: float, began: float | None, done: float) -> tuple[float | None, float | None]:
    """One question's wait split where the server began processing it: (queue wait, work), in seconds.

    (None, None) when the start was never seen; a start outside [submitted, done] is clamped into it.
    """
    if began is None:
        return None, None
    began = min(max(began, submitted), done)
    return began - submitted, done - began


def processing_began(code: str, status_time: datetime | None, now_wall: datetime, now: float) -> float | None:
    """When (in perf_counter seconds) a job began processing, from a status read at `now` (wall `now_wall`):
    the status's own time when its code says processing, None when it is still waiting (or finished)."""
    if code not in PROCESSING_CODES:
        return None
    if status_time is None:
        return now
    return now - max(0.0, (now_wall - status_time).total_seconds())


def drive(
    url: str,
    users: int,
    per_user: int,
    deadline_s: float,
    openai_clients: int = 0,
    stop_one: bool = False,
    disconnect_one: bool = False,
    disconnect_after_s: float = DISCONNECT_AFTER_S,
    questions: Sequence[str] = LOAD_QUESTIONS,
) -> dict[str, Any]:
    """All chat users and OpenAI clients at once; each request's latency, outcome and error (and for the chat,
    its queue wait and work); nothing runs past the deadline. `stop_one`: chat user 0 presses Stop on its first
    answer; `disconnect_one`: OpenAI client 0 closes its first stream `disconnect_after_s` after it began.
    Each question goes to one asker (see `question_index`) while there are enough."""
    url = url.rstrip("/")
    end = time.monotonic() + deadline_s
    requests: list[dict[str, Any]] = []
    lock = threading.Lock()
    go = threading.Barrier(users + openai_clients)

    def remaining() -> float:
        return max(1.0, end - time.monotonic())

    def new_record(door: str, u: int, j: int, role: str) -> dict[str, Any]:
        slot = u if door == "chat" else users + u
        question = question_index(slot, j, per_user, len(questions))
        return {"door": door, "user": u, "question": question, "role": role, "error": None}

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
                    began = _follow(client, job, end, press_stop=role == "stopper")
                    final = job.result(timeout=remaining())
                    record["queue_s"], record["work_s"] = queue_and_work(started, began, time.perf_counter())
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
    chat_answered = [r for r in answered if r["door"] == "chat"]
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
        "queue_s": summarize([r.get("queue_s") for r in chat_answered]),
        "work_s": summarize([r.get("work_s") for r in chat_answered]),
        "throughput_answers_per_min": 60 * len(answered) / wall if wall else None,
    }


def _outcome(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """What became of the stopped or the abandoned question (None when there was none)."""
    if record is None:
        return None
    return {k: record[k] for k in ("outcome", "error", "latency_s", "stop_too_late") if k in record}


def _follow(client: Any, job: Any, end: float, press_stop: bool = False) -> float | None:
    """Wait for the job to end (or time to be up), reading its status every POLL_S; return when the server began
    processing it (perf_counter seconds; None if not seen). `press_stop`: press Stop once the chat shows the
    answer being written."""
    began: float | None = None
    while time.monotonic() < end and not job.done():
        if began is None:
            status = job.status()
            began = processing_began(status.code.name, status.time, datetime.now(), time.perf_counter())
        if press_stop:
            outputs = job.outputs()
            if outputs and "Drafting" in _text(outputs[-1][1][-1]):
                client.predict(api_name="/stop")
                press_stop = False
        time.sleep(POLL_S)
    return began


def _api_key() -> str:
    """The OpenAI-compatible API's key when the environment sets one (the app on loopback needs none)."""
    return os.environ.get("ASSISTANT_API_KEY") or "unused-on-loopback"


def run(bench: Workbench) -> dict[str, Any]:
    """The load section: start the app on the seed store, drive it with the chat users, then run the checks
    (Stop, a client leaving), read its peak memory, stop it."""
    store = bench.seed_store()
    users = QUICK_USERS if bench.quick else USERS
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
        log(f"load: serving after {startup_s:.1f} s; {users} chat users x {per_user} questions ...")
        result = drive(url, users, per_user, deadline)
        log(f"load: the checks (Stop in the chat, {CHECK_OPENAI_CLIENTS} OpenAI clients, one leaving) ...")
        result["checks"] = drive(
            url,
            1,
            1,
            CHECKS_DEADLINE_S,
            CHECK_OPENAI_CLIENTS,
            stop_one=True,
            disconnect_one=True,
            questions=LOAD_QUESTIONS[-CHECK_QUESTIONS:],
        )
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
