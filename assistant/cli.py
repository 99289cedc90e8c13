"""The command line: `assistant ingest | docs | ask | chat | serve | eval | config`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistant.config import Settings
from assistant.prompts import PromptError
from assistant.store import StoreError

if TYPE_CHECKING:
    from assistant.app import Assistant
    from assistant.chain import Answer, Sources
    from assistant.retrieval import Filters


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def _open(settings: Settings | None = None) -> Assistant:
    from assistant.app import Assistant

    try:
        return Assistant.from_settings(settings or Settings())
    except (StoreError, PromptError) as exc:
        _fail(str(exc))
        raise


def _known_errors() -> tuple[type[BaseException], ...]:
    from assistant.embeddings import ModelFileError
    from assistant.language import LanguageError
    from assistant.lexicon import LexiconError
    from assistant.llm import LLMUnavailableError

    return (StoreError, PromptError, LLMUnavailableError, ModelFileError, LanguageError, LexiconError)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """A grounded assistant on U.S.-South Korea coordination on North Korea, with checked citations."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--title", help="Title of the document(s) given, instead of the one read from them.")
@click.option("--outlet", help="Outlet (publisher) of the document(s) given, e.g. --outlet Yonhap.")
@click.option("--published", help="Publication date of the document(s) given (YYYY-MM-DD).")
def ingest(
    paths: tuple[Path, ...], as_json: bool, title: str | None, outlet: str | None, published: str | None
) -> None:
    """Index .txt, .md, .html and .pdf files and folders (with optional NAME.meta.yaml sidecars).

    Each file's type is told by its content; its title, outlet and date are read from it (see `assistant
    docs`), unless --title, --outlet or --published say otherwise (they are remembered on later runs).
    """
    if published:
        from assistant.corpus import DocumentError, user_date

        try:
            published = user_date(published, "--published")
        except DocumentError as exc:
            raise click.BadParameter(str(exc), param_hint="--published") from exc
    try:
        with _open() as assistant:
            report = assistant.ingest(paths, title=title, outlet=outlet, published=published)
    except (StoreError, ValueError) as exc:  # ValueError: a bad setting (pydantic) or model string
        _fail(str(exc))
        return
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())


def format_library(records: list[Any]) -> str:
    """One block per document: name, title, outlet, date, how each was found, chunks and flags."""
    if not records:
        return "The library is empty: add documents with `assistant ingest PATH`."
    out: list[str] = []
    for r in records:
        out.append(f"{r.source}  [{r.kind}, {r.chunks} chunk(s)]")
        for key in ("title", "outlet", "published"):
            value = getattr(r, key) or ("undated" if key == "published" else "unknown")
            how = r.provenance.get(key)
            sure = r.confidence.get(key)
            found = f"  ({how}; {sure:.2f})" if how and sure is not None else ""
            out.append(f"    {key:<9} {value}{found}")
        if r.flags:
            out.append("    flags     " + "; ".join(r.flags))
        for q in getattr(r, "quarantined", []):  # instructions to an AI, hidden text: kept but never used
            text = " ".join(str(q.get("text", "")).split())
            text = text if len(text) <= 90 else text[:89] + "…"
            out.append(f"    quarantined {text!r}  ({q.get('reason', '')})")
    out.append(f"\n{len(records)} document(s).")
    return "\n".join(out)


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the library as JSON.")
@click.pass_context
def docs(ctx: click.Context, as_json: bool) -> None:
    """List every document: title, outlet, date, how each was found, chunk count and flags."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        with _open() as assistant:
            records = assistant.documents()
    except StoreError as exc:
        _fail(str(exc))
        return
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in records], indent=2, ensure_ascii=False))
    else:
        click.echo(format_library(records))


@docs.command(name="remove")
@click.argument("names", nargs=-1, required=True)
def docs_remove(names: tuple[str, ...]) -> None:
    """Remove documents (by file name, as `assistant docs` lists them) from the index and the library."""
    unknown: list[str] = []
    try:
        with _open() as assistant:
            for name in names:
                try:
                    chunks = assistant.remove_document(name)
                except KeyError:
                    unknown.append(name)
                    continue
                click.echo(f"Removed {name} ({chunks} chunk(s)).")
    except StoreError as exc:
        _fail(str(exc))
        return
    if unknown:
        _fail("Not in the library: " + ", ".join(unknown) + ". `assistant docs` lists the documents.")


def _filters(outlet: tuple[str, ...], since: str | None, until: str | None) -> Filters:
    from assistant.retrieval import Filters

    try:
        return Filters(outlets=outlet, since=since, until=until)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def format_answer(answer: Answer) -> str:
    """The answer, then its numbered sources with their quotes."""
    lines = [answer.text]
    if answer.citations:
        lines.append("")
        lines.append("Sources:")
        for c in answer.citations:
            lines.append(f"[{c.n}] {c.outlet}, {c.published or 'undated'} — {c.title or c.source} ({c.source})")
            lines.append(f"    “{' '.join(c.quote.split())}”")
            if c.also_reported_by:
                lines.append(f"    also reported by {c.also_reported_by}")
    if answer.standalone_question and answer.standalone_question != answer.question:
        lines.append(f"\n(Understood as: {answer.standalone_question})")
    return "\n".join(lines)


def format_reading(sources: Sources) -> str:
    """The passages the model is about to read, one line each, numbered as in its prompt ('' when none)."""
    if not sources.passages:
        return ""
    count = len(sources.passages)
    lines = [f"Reading {count} passage{'' if count == 1 else 's'}:"]
    for n, p in enumerate(sources.passages, 1):
        lines.append(f"  [{n}] {p.outlet or 'unknown outlet'}, {p.published or 'undated'} — {p.title or p.source}")
    return "\n".join(lines)


_filter_options = [
    click.option("--outlet", multiple=True, help="Only this outlet (repeatable), e.g. --outlet Yonhap."),
    click.option("--since", help="Only articles published on or after this date (YYYY-MM-DD)."),
    click.option("--until", help="Only articles published on or before this date (YYYY-MM-DD)."),
]


def _with_filters(func: Any) -> Any:
    for option in reversed(_filter_options):
        func = option(func)
    return func


@main.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (answer, refused, citations, ...).")
@_with_filters
def ask(question: str, as_json: bool, outlet: tuple[str, ...], since: str | None, until: str | None) -> None:
    """Answer QUESTION from the articles, with numbered sources and quotes."""
    filters = _filters(outlet, since, until)
    assistant = _open()
    try:
        answer = assistant.ask(question, filters=filters)
    except _known_errors() as exc:
        _fail(str(exc))
        return
    finally:
        assistant.close()
    click.echo(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False) if as_json else format_answer(answer))


@main.command()
@_with_filters
def chat(outlet: tuple[str, ...], since: str | None, until: str | None) -> None:
    """A conversation in the terminal; follow-up questions use the history. Ctrl-D or 'exit' ends it."""
    from assistant.chain import Answer, Sources

    filters = _filters(outlet, since, until)
    assistant = _open()
    history: list[dict[str, str]] = []
    click.echo("Ask about U.S.-South Korea coordination on North Korea. 'new' starts over, 'exit' ends.")
    try:
        while True:
            try:
                question = input("\nyou> ").strip()
            except EOFError:
                break
            if question.lower() in {"exit", "quit"}:
                break
            if question.lower() == "new":
                history = []
                click.echo("(new conversation)")
                continue
            if not question:
                continue
            final: Answer | None = None
            try:
                for part in assistant.stream(question, history, filters):
                    if isinstance(part, Answer):
                        final = part
                    elif isinstance(part, Sources):  # first: what the model reads, before it writes
                        reading = format_reading(part)
                        click.echo((reading + "\n" if reading else "") + "assistant> ", nl=False)
                    else:
                        click.echo(part, nl=False)
            except _known_errors() as exc:
                click.echo(f"\nError: {exc}")
                continue
            assert final is not None
            click.echo("\n\nChecked answer:\n" + format_answer(final))
            history += [{"role": "user", "content": question}, {"role": "assistant", "content": final.text}]
    finally:
        assistant.close()


@main.command(name="eval")
@click.option(
    "--set",
    "set_paths",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    multiple=True,
    help="Question set (YAML); default evals/questions.yaml (with --calibrate: repeatable, default both sets).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON instead of the table.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for report.json / report.md / report.html; default evals/reports/latest.",
)
@click.option("--baseline", is_flag=True, help="Also run a plain LangChain RAG chain on the same model, side by side.")
@click.option("--only", multiple=True, help="Only questions whose id starts with this (repeatable).")
@click.option("--kind", multiple=True, help="Only questions of this kind (repeatable).")
@click.option(
    "--fresh",
    is_flag=True,
    help="Index the set's own corpus (its `corpus:`) into a temporary store and ask there, not the main index.",
)
@click.option(
    "--calibrate",
    is_flag=True,
    help="Sweep the answer thresholds over the sets (each in its own temporary store) and print, per set, "
    "correct answers against refusals at every grid point.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=V1,V2,...",
    help="With --calibrate: a setting and the values to sweep (repeatable); replaces the default grid.",
)
@click.option(
    "--ablate",
    is_flag=True,
    help="Run the sets (each in its own temporary store) with every judgement component on, then with each "
    "switched off in turn, and print both sets' metrics side by side.",
)
def eval_command(
    set_paths: tuple[Path, ...],
    as_json: bool,
    report_dir: Path | None,
    baseline: bool,
    only: tuple[str, ...],
    kind: tuple[str, ...],
    fresh: bool,
    calibrate: bool,
    params: tuple[str, ...],
    ablate: bool,
) -> None:
    """Run the eval set against the configured assistant; exit 1 when a metric is below its threshold.

    With --calibrate, sweep the answer thresholds instead (see --param) and report the trade-off.
    """
    import tempfile

    from assistant.config import PROJECT_ROOT
    from assistant.evaluation import EvalSet, EvalSetError, run_baseline, run_eval, table, write_reports

    if calibrate or ablate:
        if baseline or report_dir is not None:
            _fail("--baseline and --report do not apply to --calibrate or --ablate.")
        if ablate and (calibrate or params):
            _fail("--ablate takes no --calibrate or --param.")
        _calibrate(set_paths, params, only, kind, as_json, ablation=ablate)
        return
    if params:
        _fail("--param only applies to --calibrate.")
    if len(set_paths) > 1:
        _fail("Give one --set at a time (several only with --calibrate).")
    try:
        eval_set = EvalSet.load(set_paths[0] if set_paths else PROJECT_ROOT / "evals" / "questions.yaml").select(
            only, kind
        )
    except EvalSetError as exc:
        _fail(str(exc))
        return
    scratch = tempfile.TemporaryDirectory(prefix="assistant-eval-") if fresh else None
    if scratch is not None:
        if eval_set.corpus is None:
            _fail(f"{eval_set.path} names no corpus: add `corpus: FOLDER` to it, or drop --fresh.")
        assistant = _open(Settings(persist_dir=Path(scratch.name)))
        click.echo(assistant.ingest([eval_set.corpus]).summary(), err=True)  # type: ignore[list-item]
    else:
        assistant = _open()
    try:
        if assistant.store.count() == 0:
            _fail(f"The index at {assistant.store.location} is empty: run `assistant ingest seeds/` first.")
        assistant.warm()
        report = run_eval(eval_set, assistant)
        if baseline:
            report.baseline = run_baseline(eval_set, assistant)
    except _known_errors() as exc:
        _fail(str(exc))
        return
    finally:
        assistant.close()
        if scratch is not None:
            scratch.cleanup()
    paths = write_reports(report, report_dir or PROJECT_ROOT / "evals" / "reports" / "latest")
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(table(report))
        if report.baseline is not None:
            click.echo("\nBaseline (plain LangChain RAG, same model):\n" + table(report.baseline))
        click.echo("\nReports: " + ", ".join(str(p) for p in paths))
    failures = report.gate_failures()
    for failure in failures:
        click.echo(f"GATE FAILED: {failure}", err=True)
    if failures:
        sys.exit(1)
    click.echo("Gate passed.", err=True)


def _calibrate(
    set_paths: tuple[Path, ...],
    params: tuple[str, ...],
    only: tuple[str, ...],
    kind: tuple[str, ...],
    as_json: bool,
    ablation: bool = False,
) -> None:
    """`assistant eval --calibrate` (every set at every grid point) or `--ablate` (each component off in
    turn), one memoised model for all."""
    from assistant.config import PROJECT_ROOT
    from assistant.evaluation import (
        CalibrationError,
        EvalSet,
        EvalSetError,
        ablate,
        calibrate,
        calibration_table,
        default_grid,
        parse_params,
    )

    evals = PROJECT_ROOT / "evals"
    paths = set_paths or (evals / "questions.yaml", evals / "user-docs" / "questions.yaml")
    try:
        sets = [EvalSet.load(path).select(only, kind) for path in paths]
        grid = parse_params(params) if params else default_grid()
    except (EvalSetError, CalibrationError) as exc:
        _fail(str(exc))
        return
    sets = [s for s in sets if s.questions]
    if not sets:
        _fail("--only / --kind leave no question in any set.")
    if not grid and not ablation:
        _fail("No setting to sweep: give --param NAME=v1,v2,...")
    errors: tuple[type[BaseException], ...] = (*_known_errors(), EvalSetError)
    say = lambda line: click.echo(line, err=True)  # noqa: E731
    try:
        result = ablate(sets, progress=say) if ablation else calibrate(sets, grid, progress=say)
    except errors as exc:
        _fail(str(exc))
        return
    click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) if as_json else calibration_table(result))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@main.command()
@click.option("--host", help="Address to bind (default: the `host` setting, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: the `port` setting, 7860).")
def serve(host: str | None, port: int | None) -> None:
    """Open the chat UI in the browser at http://HOST:PORT (Ctrl-C stops it), with its API (/answer) and an
    OpenAI-compatible API at /v1 (a non-loopback HOST needs a key: see `assistant config`, api_key_env)."""
    import logging
    import signal

    from pydantic import ValidationError

    overrides: dict[str, Any] = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        _fail(f"{exc}\nCheck the ASSISTANT_* environment variables and assistant.toml.")
        return
    key: str | None = None
    if settings.openai_api:
        from assistant.openai_api import ApiKeyError, api_key_for

        try:
            key = api_key_for(settings)
        except ApiKeyError as exc:
            _fail(str(exc))
            return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.INFO)  # libraries that set their own loggers to DEBUG stay quiet
    logging.getLogger("httpx").setLevel(logging.WARNING)
    assistant = _open(settings)
    try:
        click.echo("Loading the model, the embeddings and the index...")
        try:
            assistant.warm()
        except _known_errors() as exc:
            click.echo(f"Warning: {exc}\nThe chat UI starts anyway; questions fail until this is fixed.", err=True)
        from assistant.api import AnswerGate
        from assistant.ui import build_app, launch

        gate = AnswerGate(settings.api_queue_timeout_s)  # one question at a time: the page, /answer and /v1
        try:
            app = build_app(assistant, settings, gate)
        except StoreError as exc:
            _fail(str(exc))
            return
        routes = []
        if settings.openai_api:
            from assistant.openai_api import openai_routes

            routes = openai_routes(assistant, settings, gate, key)
        try:
            url = launch(app, settings, routes=routes)
        except OSError as exc:
            why = "the port is in use" if "empty port" in str(exc) else str(exc)
            _fail(f"Cannot serve on {settings.host}:{settings.port}: {why}. Stop the other server or pass --port.")
            return
        click.echo(f"The chat UI is at {url}  (Ctrl-C stops it)")
        click.echo(f"Its API: POST {url}/gradio_api/call/answer (gradio_client: api_name='/answer')")
        if routes:
            needs = f", key from ${settings.api_key_env}" if key else ""
            click.echo(f"OpenAI-compatible API: {url}/v1 (model {settings.api_model_name!r}{needs})")
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
        app.block_thread()
        app.close()
    finally:
        assistant.close()


@main.command()
def config() -> None:
    """Show every setting, its value and what it means."""
    from pydantic import ValidationError

    try:
        settings = Settings()
    except ValidationError as exc:
        _fail(f"{exc}\nCheck the ASSISTANT_* environment variables and assistant.toml.")
        return
    for name, info in Settings.model_fields.items():
        click.echo(f"{name} = {getattr(settings, name)!r}\n    {info.description}")


if __name__ == "__main__":
    main()
