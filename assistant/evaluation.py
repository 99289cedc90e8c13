"""The eval suite: a question set with gold facts and sources, deterministic metrics, a gate and reports.

>>> eval_set = EvalSet.load(Path("evals/questions.yaml"))
>>> report = run_eval(eval_set, assistant)          # runs every question through the assistant
>>> report.metrics["answer_correctness"], report.gate_failures()
"""

from __future__ import annotations

import html
import itertools
import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from tqdm import tqdm

from assistant.chunking import split_sentences

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from assistant.app import Assistant
    from assistant.chain import Answer
    from assistant.config import Settings

KINDS = (
    "single_fact",
    "multi_source",
    "time_dependent",
    "unanswerable",
    "follow_up",
    "false_premise",
    "off_corpus",
)
# metric -> (direction, description); "min" means the metric must be at least the threshold
METRICS: dict[str, tuple[str, str]] = {
    "answer_correctness": ("min", "answerable questions answered with every key fact"),
    "citation_precision": ("min", "citations pointing to a gold source with a verbatim quote"),
    "citation_recall": ("min", "answered questions citing at least one gold source"),
    "groundedness": ("min", "answer sentences carrying a verified quote"),
    "refusal_rate": ("min", "unanswerable / off-corpus questions refused"),
    "false_refusal_rate": ("max", "answerable questions refused"),
    "retrieval_hit_at_1": ("min", "gold source ranked first"),
    "retrieval_hit_at_3": ("min", "gold source in the top 3"),
    "retrieval_hit_at_5": ("min", "gold source in the top 5"),
    "retrieval_mrr": ("min", "mean reciprocal rank of the first gold source"),
    "metadata_accuracy": ("min", "title, outlet and date of each document as its metadata table gives them"),
    "speaker_consistency": ("min", "answered speaker questions that name the right speaker and cite only them"),
}


class EvalSetError(ValueError):
    """The question set file is malformed; the message names the question and the field."""


@dataclass(frozen=True)
class EvalQuestion:
    """One question with its gold: key facts (each a list of accepted variants) and source files."""

    id: str
    kind: str
    question: str
    expect: str
    key_facts: tuple[tuple[str, ...], ...] = ()
    sources: tuple[str, ...] = ()
    history: tuple[dict[str, str], ...] = ()
    note: str = ""
    tags: tuple[str, ...] = ()
    speaker: tuple[str, ...] = ()  # whose view or statement it asks about: accepted variants of one name
    wrong_speakers: tuple[tuple[str, ...], ...] = ()  # others quoted nearby, each a list of variants

    @property
    def answerable(self) -> bool:
        return self.expect == "answer"


@dataclass
class EvalSet:
    """A question set and its thresholds, loaded from YAML."""

    questions: list[EvalQuestion]
    thresholds: dict[str, float]
    path: Path | None = None
    corpus: Path | None = None  # the documents the questions are about (`corpus:` in the YAML)
    metadata: Path | None = None  # their true title, outlet and date (`metadata:` in the YAML)

    @property
    def name(self) -> str:
        if self.path is None:
            return "questions"
        if self.path.stem != "questions":
            return self.path.stem
        return self.path.parent.name if self.path.parent.name != "evals" else "seeds"

    @classmethod
    def load(cls, path: Path) -> EvalSet:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise EvalSetError(f"{path}: cannot read the question set ({exc})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
            raise EvalSetError(f"{path}: expected a mapping with a 'questions' list")
        thresholds = {str(k): float(v) for k, v in (data.get("thresholds") or {}).items()}
        unknown = set(thresholds) - set(METRICS)
        if unknown:
            raise EvalSetError(f"{path}: unknown thresholds {sorted(unknown)}; known: {sorted(METRICS)}")
        questions: list[EvalQuestion] = []
        seen: set[str] = set()
        for i, item in enumerate(data["questions"]):
            questions.append(_question(item, i, path))
            if questions[-1].id in seen:
                raise EvalSetError(f"{path}: question id {questions[-1].id!r} appears twice")
            seen.add(questions[-1].id)

        def relative(key: str) -> Path | None:
            value = data.get(key)
            if value is None:
                return None
            target = (path.parent / str(value)).resolve()
            if not target.exists():
                raise EvalSetError(f"{path}: {key} {value!r} does not exist (it is relative to the question set)")
            return target

        return cls(questions, thresholds, path, relative("corpus"), relative("metadata"))

    def select(self, ids: Iterable[str] = (), kinds: Iterable[str] = ()) -> EvalSet:
        """A subset by question id prefix or kind (all when both are empty)."""
        ids, kinds = tuple(ids), tuple(kinds)
        if not ids and not kinds:
            return self
        keep = [q for q in self.questions if q.kind in kinds or any(q.id.startswith(i) for i in ids)]
        return EvalSet(keep, self.thresholds, self.path, self.corpus, self.metadata)


def _question(item: Any, index: int, path: Path) -> EvalQuestion:
    where = f"{path}: question {index + 1}"
    if not isinstance(item, dict):
        raise EvalSetError(f"{where}: expected a mapping")
    for key in ("id", "kind", "question", "expect"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise EvalSetError(f"{where} ({item.get('id', '?')}): missing or empty {key!r}")
    if item["kind"] not in KINDS:
        raise EvalSetError(f"{where} ({item['id']}): kind must be one of {', '.join(KINDS)}")
    if item["expect"] not in ("answer", "refuse"):
        raise EvalSetError(f"{where} ({item['id']}): expect must be 'answer' or 'refuse'")
    facts = item.get("key_facts") or []
    if item["expect"] == "answer" and not facts:
        raise EvalSetError(f"{where} ({item['id']}): an answerable question needs key_facts")
    key_facts = tuple(tuple(str(v) for v in (f if isinstance(f, list) else [f])) for f in facts)
    history = tuple({"role": str(m["role"]), "content": str(m["content"])} for m in item.get("history") or [])
    tags = tuple(str(t) for t in item.get("tags") or ())
    speaker, wrong_speakers = _speakers(item, tags, f"{where} ({item['id']})")
    return EvalQuestion(
        id=item["id"],
        kind=item["kind"],
        question=item["question"],
        expect=item["expect"],
        key_facts=key_facts,
        sources=tuple(item.get("sources") or ()),
        history=history,
        note=str(item.get("note") or ""),
        tags=tags,
        speaker=speaker,
        wrong_speakers=wrong_speakers,
    )


def _variants(value: Any) -> tuple[str, ...] | None:
    """A name as its accepted variants: a string or a non-empty list of strings; None when malformed."""
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v.strip() for v in values):
        return None
    return tuple(v.strip() for v in values)


Names = tuple[str, ...]  # one name as its accepted variants


def _speakers(item: dict[str, Any], tags: tuple[str, ...], where: str) -> tuple[Names, tuple[Names, ...]]:
    """The `speaker:` and `wrong_speakers:` of a question tagged `speaker`, checked."""
    if "speaker" not in tags:
        for key in ("speaker", "wrong_speakers"):
            if item.get(key) is not None:
                raise EvalSetError(f"{where}: has {key!r} but is not tagged speaker: add `speaker` to its tags")
        return (), ()
    if item.get("speaker") is None:
        raise EvalSetError(
            f"{where}: is tagged speaker but names no `speaker:` (the person or organisation whose view it asks"
            " about, as a name or a list of accepted variants)"
        )
    speaker = _variants(item["speaker"])
    if speaker is None:
        raise EvalSetError(f"{where}: speaker must be a name or a non-empty list of accepted variants")
    if item["expect"] != "answer":
        raise EvalSetError(f"{where}: a speaker question must expect an answer (it asks whose view something is)")
    raw = item.get("wrong_speakers") or []
    wrong = tuple(_variants(w) for w in raw) if isinstance(raw, list) else (None,)
    if any(w is None for w in wrong):
        raise EvalSetError(f"{where}: wrong_speakers must be a list of names, each a name or a list of variants")
    ours = {normalise(v) for v in speaker}
    for names in wrong:
        assert names is not None
        if shared := ours & {normalise(v) for v in names}:
            raise EvalSetError(f"{where}: {sorted(shared)} is both the speaker and a wrong speaker")
    return speaker, tuple(w for w in wrong if w is not None)


# --- scoring one answer ----------------------------------------------------------------------


def normalise(text: str) -> str:
    """Lowercase, straight quotes and dashes, single spaces: the form key facts are matched in."""
    text = text.lower().replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = re.sub(r"[‐‑‒–—]", "-", text)
    return re.sub(r"\s+", " ", text).strip()


def fact_found(text: str, variants: Sequence[str]) -> bool:
    """True when any accepted variant of a fact stands in the text."""
    body = normalise(text)
    return any(normalise(v) in body for v in variants)


@dataclass
class CitationCheck:
    n: int
    source: str
    gold: bool
    verbatim: bool


@dataclass
class QuestionResult:
    """What one question got and how it scored."""

    id: str
    kind: str
    question: str
    expect: str
    answer: str
    refused: bool
    standalone_question: str = ""
    facts: list[bool] = field(default_factory=list)
    citations: list[CitationCheck] = field(default_factory=list)
    sentences: int = 0
    grounded_sentences: int = 0
    retrieved_sources: list[str] = field(default_factory=list)
    gold_sources: list[str] = field(default_factory=list)
    first_token_s: float | None = None
    total_s: float = 0.0
    error: str = ""
    speaker: str = ""  # a speaker question: whose view it asks about
    speaker_issues: list[str] = field(default_factory=list)  # why the answer is not consistent with the speaker

    @property
    def speaker_checked(self) -> bool:
        """A speaker question that was answered: it counts for speaker consistency."""
        return bool(self.speaker) and not self.refused and not self.error

    @property
    def correct(self) -> bool:
        if self.error:
            return False
        if self.expect == "refuse":
            return self.refused
        return not self.refused and all(self.facts)

    @property
    def gold_rank(self) -> int | None:
        for rank, source in enumerate(self.retrieved_sources, start=1):
            if source in self.gold_sources:
                return rank
        return None

    def failures(self) -> list[str]:
        """Why this question failed, in words."""
        if self.error:
            return [f"error: {self.error}"]
        out: list[str] = []
        if self.expect == "refuse" and not self.refused:
            out.append("answered a question it should refuse")
        if self.expect == "answer":
            if self.refused:
                out.append("refused an answerable question")
            elif not all(self.facts):
                out.append(f"missing key facts {[i + 1 for i, ok in enumerate(self.facts) if not ok]}")
            bad = [c.n for c in self.citations if not (c.gold and c.verbatim)]
            if bad and not self.refused:
                out.append(f"citations {bad} not to a gold source or not verbatim")
            if self.gold_rank is None or self.gold_rank > 5:
                out.append("gold source not retrieved in the top 5")
            if self.speaker_checked and self.speaker_issues:
                out.append("speaker: " + "; ".join(self.speaker_issues))
        return out


def score_answer(
    q: EvalQuestion,
    answer: Answer,
    documents: Callable[[str], str | None],
    bylines: Callable[[str], str | None] | None = None,
) -> QuestionResult:
    """Score an Answer against the gold; `documents(source)` gives a document's cleaned text and `bylines(source)`
    its byline (whose voice an unattributed quote of an op-ed or blog is)."""
    result = QuestionResult(
        id=q.id,
        kind=q.kind,
        question=q.question,
        expect=q.expect,
        answer=answer.text,
        refused=answer.refused,
        standalone_question=answer.standalone_question,
        gold_sources=list(q.sources),
        first_token_s=answer.timings.get("first_token_s"),
        total_s=answer.timings.get("total_s", 0.0),
    )
    result.facts = [fact_found(answer.text, variants) for variants in q.key_facts]
    verified: set[int] = set()
    for c in answer.citations:
        text = documents(c.source)
        verbatim = text is not None and text[c.start : c.end] == c.quote
        result.citations.append(CitationCheck(c.n, c.source, c.source in q.sources, verbatim))
        if verbatim:
            verified.add(c.n)
    if not answer.refused:
        for sentence in split_sentences(answer.text):
            result.sentences += 1
            marks = {int(n) for n in re.findall(r"\[(\d+)\]", sentence.text)}
            if marks and marks <= verified:
                result.grounded_sentences += 1
    result.retrieved_sources = [str(r["source"]) for r in answer.trace.get("retrieved", [])]
    if q.speaker:
        result.speaker = q.speaker[0]
        if not answer.refused:
            result.speaker_issues = speaker_issues(q, answer, documents, bylines or (lambda source: None))
    return result


# --- whose view: speaker consistency -------------------------------------------------------------

# How far before a quote the text is read for who is speaking: about a chunk, so a quote of the form
# '"...," she said.' finds the name its paragraph (or the one before) gives.
SPEAKER_WINDOW_CHARS = 1000


def _name_pattern(variants: Sequence[str]) -> re.Pattern[str]:
    alternatives = sorted({re.escape(normalise(v)) for v in variants}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


def names(text: str, variants: Sequence[str]) -> bool:
    """True when any variant of a name stands in the text as whole words (case, quotes and dashes aside)."""
    return _name_pattern(variants).search(normalise(text)) is not None


def quote_speaker(
    quote: str, before: str, byline: str | None, speaker: Sequence[str], wrong: Sequence[Sequence[str]]
) -> str | None:
    """Whose a quote is, among the speaker (`speaker[0]` is returned) and the wrong speakers (their first name).

    The speaker's when the quote names them; a wrong speaker's when it names only that one; else whoever
    of them is named last in the text `before` it, up to its end (its passage: '"...," she said.'); else
    the document's byline (an op-ed or a blog speaks in its author's voice); None when nothing says.
    """
    people = [tuple(speaker), *[tuple(w) for w in wrong]]
    in_quote = [p for p in people if names(quote, p)]
    if in_quote:
        return speaker[0] if names(quote, speaker) else in_quote[0][0]
    text = normalise(before)
    last: tuple[int, str] | None = None
    for person in people:
        for m in _name_pattern(person).finditer(text):
            if last is None or m.end() > last[0]:
                last = (m.end(), person[0])
    if last is not None:
        return last[1]
    for person in people:
        if byline and names(byline, person):
            return person[0]
    return None


def speaker_issues(
    q: EvalQuestion, answer: Answer, documents: Callable[[str], str | None], bylines: Callable[[str], str | None]
) -> list[str]:
    """Why an answer to a speaker question is not consistent with its speaker (empty when it is).

    It must name the speaker; no sentence of it may give the view to a wrong speaker (a sentence naming one
    and not the speaker, holding a key fact other than the speaker's name, or any such sentence when the
    question asks who); and every quote it cites must be the speaker's (see `quote_speaker`).
    """
    speaker, wrong = q.speaker, q.wrong_speakers
    issues: list[str] = []
    if not names(answer.text, speaker):
        issues.append(f"the answer does not name {speaker[0]}")
    view = [f for f in q.key_facts if not any(names(v, speaker) for v in f)]  # the statement, not the name
    for sentence in split_sentences(answer.text):
        if names(sentence.text, speaker):
            continue
        other = next((w[0] for w in wrong if names(sentence.text, w)), None)
        if other and (not view or any(fact_found(sentence.text, f) for f in view)):
            issues.append(f"the answer gives it to {other}: {_clip(sentence.text)!r}")
    for c in answer.citations:
        text = documents(c.source)
        if text is not None and text[c.start : c.end] == c.quote:
            before = text[max(0, c.start - SPEAKER_WINDOW_CHARS) : c.end]
        else:  # not verbatim: the passage it was shown in stands for the document
            at = c.context.find(c.quote)
            before = c.context[: at + len(c.quote)] if at >= 0 else c.context + " " + c.quote
        whose = quote_speaker(c.quote, before, bylines(c.source), speaker, wrong)
        if whose != speaker[0]:
            said = f"{whose}'s" if whose else "not attributed to anyone"
            issues.append(f"quote [{c.n}] ({c.source}) is {said}, not {speaker[0]}'s: {_clip(c.quote)!r}")
    return issues


def _clip(text: str, length: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 3] + "..."


# --- metrics -----------------------------------------------------------------------------------


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


def compute_metrics(results: Sequence[QuestionResult]) -> dict[str, float | None]:
    """Every metric over a list of results (None where no question applies)."""
    answerable = [r for r in results if r.expect == "answer"]
    refusable = [r for r in results if r.expect == "refuse"]
    answered = [r for r in answerable if not r.refused and not r.error]
    cites = [c for r in answered for c in r.citations]
    metrics: dict[str, float | None] = {
        "answer_correctness": _share(sum(r.correct for r in answerable), len(answerable)),
        "citation_precision": _share(sum(c.gold and c.verbatim for c in cites), len(cites)),
        "citation_recall": _share(sum(any(c.gold for c in r.citations) for r in answered), len(answered)),
        "groundedness": _share(sum(r.grounded_sentences for r in answered), sum(r.sentences for r in answered)),
        "refusal_rate": _share(sum(r.refused for r in refusable), len(refusable)),
        "false_refusal_rate": _share(sum(r.refused for r in answerable), len(answerable)),
    }
    spoken = [r for r in results if r.speaker_checked]
    metrics["speaker_consistency"] = _share(sum(not r.speaker_issues for r in spoken), len(spoken))
    ranks = [r.gold_rank for r in answerable]
    for k in (1, 3, 5):
        metrics[f"retrieval_hit_at_{k}"] = _share(sum(1 for x in ranks if x is not None and x <= k), len(ranks))
    metrics["retrieval_mrr"] = _share(0, 0) if not ranks else sum(1 / x for x in ranks if x) / len(ranks)
    return metrics


def latency(results: Sequence[QuestionResult]) -> dict[str, float | None]:
    """Median and p95 of time to first token and total time, in seconds."""
    out: dict[str, float | None] = {}
    for name, values in (
        ("first_token_s", [r.first_token_s for r in results if r.first_token_s is not None]),
        ("total_s", [r.total_s for r in results if not r.error]),
    ):
        out[f"{name}_median"] = statistics.median(values) if values else None
        out[f"{name}_p95"] = _percentile(values, 95) if values else None
    return out


def _percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


# --- the run -------------------------------------------------------------------------------------


@dataclass
class EvalReport:
    """The results of one run: per-question scores, metrics overall and per kind, the gate."""

    name: str
    results: list[QuestionResult]
    thresholds: dict[str, float]
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    baseline: EvalReport | None = None
    extra: dict[str, float | None] = field(default_factory=dict)  # metrics not per question (metadata accuracy)
    metadata_misses: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, float | None]:
        return {**compute_metrics(self.results), **self.extra}

    def by_kind(self) -> dict[str, dict[str, float | None]]:
        kinds = [k for k in KINDS if any(r.kind == k for r in self.results)]
        return {k: compute_metrics([r for r in self.results if r.kind == k]) for k in kinds}

    def gate_failures(self) -> list[str]:
        """One sentence per metric on the wrong side of its threshold, naming the questions that broke it."""
        failures: list[str] = []
        metrics = self.metrics
        for name, threshold in self.thresholds.items():
            value = metrics.get(name)
            direction, what = METRICS[name]
            if value is None:
                continue
            if (direction == "min" and value < threshold) or (direction == "max" and value > threshold):
                culprits = (
                    self.metadata_misses
                    if name == "metadata_accuracy"
                    else [r.id for r in self.results if _breaks(name, r)]
                )
                sign = ">=" if direction == "min" else "<="
                failures.append(
                    f"{name} = {value:.3f}, needs {sign} {threshold} ({what}); questions: "
                    + (", ".join(culprits[:15]) + (" ..." if len(culprits) > 15 else "") or "-")
                )
        return failures

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "seconds": round(self.seconds, 1),
            "questions": len(self.results),
            "metrics": self.metrics,
            "latency": latency(self.results),
            "by_kind": self.by_kind(),
            "thresholds": self.thresholds,
            "gate_failures": self.gate_failures(),
            "metadata_misses": self.metadata_misses,
            "settings": self.settings,
            "results": [{**asdict(r), "correct": r.correct, "failures": r.failures()} for r in self.results],
        }
        if self.baseline is not None:
            out["baseline"] = self.baseline.to_dict()
        return out


def _breaks(metric: str, r: QuestionResult) -> bool:
    if metric == "refusal_rate":
        return r.expect == "refuse" and not r.refused
    if metric == "false_refusal_rate":
        return r.expect == "answer" and r.refused
    if metric == "answer_correctness":
        return r.expect == "answer" and not r.correct
    if metric == "citation_precision":
        return r.expect == "answer" and not r.refused and any(not (c.gold and c.verbatim) for c in r.citations)
    if metric == "citation_recall":
        return r.expect == "answer" and not r.refused and not any(c.gold for c in r.citations)
    if metric == "groundedness":
        return r.expect == "answer" and not r.refused and r.grounded_sentences < r.sentences
    if metric == "speaker_consistency":
        return r.speaker_checked and bool(r.speaker_issues)
    if metric.startswith("retrieval"):
        k = 1 if metric.endswith("_1") else 3 if metric.endswith("_3") else 5
        return r.expect == "answer" and (r.gold_rank is None or r.gold_rank > k)
    return False


AnswerFn = Callable[[EvalQuestion], "Answer"]


def run_questions(
    name: str,
    eval_set: EvalSet,
    answer: AnswerFn,
    documents: Callable[[str], str | None],
    progress: bool | None = None,
    bylines: Callable[[str], str | None] | None = None,
) -> EvalReport:
    """Run every question through `answer` and score it; an exception becomes a failed question."""
    started = time.perf_counter()
    results: list[QuestionResult] = []
    for q in tqdm(eval_set.questions, desc=name, unit="q", disable=progress is False or None):
        try:
            results.append(score_answer(q, answer(q), documents, bylines))
        except Exception as exc:  # one broken question must not stop the run
            results.append(
                QuestionResult(q.id, q.kind, q.question, q.expect, "", False, error=f"{type(exc).__name__}: {exc}")
            )
    return EvalReport(name, results, eval_set.thresholds, time.perf_counter() - started)


def run_eval(eval_set: EvalSet, assistant: Assistant, progress: bool | None = None) -> EvalReport:
    """Run the set through the assistant's grounded chain."""
    texts, bylines = _texts_and_bylines(assistant)

    def answer(q: EvalQuestion) -> Answer:
        return assistant.ask(q.question, history=list(q.history) or None)

    report = run_questions("grounded chain", eval_set, answer, texts.get, progress, bylines.get)
    report.settings = _settings_summary(assistant)
    if eval_set.metadata is not None:
        report.extra["metadata_accuracy"], report.metadata_misses = metadata_accuracy(assistant, eval_set.metadata)
    return report


def load_metadata_table(path: Path) -> list[dict[str, Any]]:
    """The true title, outlet and date of each document (`documents:` list of file/title/outlet/published)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise EvalSetError(f"{path}: cannot read the metadata table ({exc})") from exc
    entries = data.get("documents") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and e.get("file") for e in entries):
        raise EvalSetError(f"{path}: expected 'documents:' with a 'file' in every entry")
    return entries


def same_field(key: str, got: str, want: Any) -> bool:
    """Whether an extracted field is the true one: same words, case and punctuation aside; a name written
    'Short (Long Form)' in the table may be either."""
    if key == "published":
        return got == ("" if want is None else str(want))
    truth = str(want or "")

    def norm(text: str) -> str:
        text = re.sub(r"^the\s+", "", normalise(text))
        return re.sub(r"[^\w ]", "", text).strip()

    forms = {truth}
    if m := re.fullmatch(r"(.+?)\s*\((.+)\)", truth):
        forms |= {m.group(1), m.group(2)}
    return norm(got) in {norm(f) for f in forms}


def metadata_accuracy(assistant: Assistant, table: Path) -> tuple[float | None, list[str]]:
    """Share of (document, field) pairs where the library holds the table's title, outlet and date."""
    records = {r.source: r for r in assistant.documents()}
    total = 0
    misses: list[str] = []
    for entry in load_metadata_table(table):
        record = records.get(str(entry["file"]))
        for key in ("title", "outlet", "published"):
            total += 1
            got = getattr(record, key) if record is not None else None
            if got is None or not same_field(key, got, entry.get(key)):
                misses.append(f"{entry['file']} {key}: {got!r}, truth {entry.get(key)!r}")
    return (1 - len(misses) / total if total else None), misses


def run_baseline(eval_set: EvalSet, assistant: Assistant, progress: bool | None = None) -> EvalReport:
    """Run the set through a plain LangChain RAG chain on the same store and model."""
    from assistant.baseline import PlainRag

    plain = PlainRag(assistant.store, assistant.llm, k=max(assistant.settings.top_k, 1))
    texts, bylines = _texts_and_bylines(assistant)
    return run_questions(
        "plain LangChain RAG", eval_set, lambda q: plain.ask(q.question), texts.get, progress, bylines.get
    )


def document_texts(assistant: Assistant) -> dict[str, str]:
    """Cleaned text of every indexed document, as the library holds it (for the verbatim check)."""
    return {r.source: r.text for r in assistant.documents()}


def _texts_and_bylines(assistant: Assistant) -> tuple[dict[str, str], dict[str, str]]:
    """Each document's cleaned text and, where it has one, its byline (whose voice its unattributed lines are)."""
    records = assistant.documents()
    return {r.source: r.text for r in records}, {r.source: r.byline for r in records if r.byline}


def _settings_summary(assistant: Assistant) -> dict[str, Any]:
    s = assistant.settings
    keys = ("llm", "embedding", "chunk_size", "chunk_overlap", "top_k", "min_evidence", "min_support")
    return {k: getattr(s, k) for k in keys}


# --- reports ---------------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(report: EvalReport) -> str:
    """A plain-text table: one row per kind and overall, the main metrics as columns."""
    cols = [
        ("n", None),
        ("correct", "answer_correctness"),
        ("cite P", "citation_precision"),
        ("cite R", "citation_recall"),
        ("grounded", "groundedness"),
        ("refusal", "refusal_rate"),
        ("false ref", "false_refusal_rate"),
        ("speaker", "speaker_consistency"),
        ("hit@1", "retrieval_hit_at_1"),
        ("hit@5", "retrieval_hit_at_5"),
        ("MRR", "retrieval_mrr"),
    ]
    rows = [("kind", *[c for c, _ in cols])]
    groups = {**report.by_kind(), "overall": report.metrics}
    for kind, metrics in groups.items():
        n = len(report.results) if kind == "overall" else sum(r.kind == kind for r in report.results)
        rows.append((kind, str(n), *[_fmt(metrics.get(m)) for _, m in cols[1:] if m]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lat = latency(report.results)
    lines.append(
        f"latency: first token median {_fmt(lat['first_token_s_median'])} s, p95 {_fmt(lat['first_token_s_p95'])} s;"
        f" total median {_fmt(lat['total_s_median'])} s, p95 {_fmt(lat['total_s_p95'])} s"
    )
    if report.extra.get("metadata_accuracy") is not None:
        lines.append(f"metadata accuracy: {_fmt(report.extra['metadata_accuracy'])}")
    return "\n".join(lines)


def side_by_side(reports: dict[str, EvalReport]) -> str:
    """One row per metric, one column per eval set, each value with its threshold and a mark when it fails."""
    names = list(reports)
    rows = [("metric", *names)]
    for metric in METRICS:
        cells = []
        for name in names:
            report = reports[name]
            value = report.metrics.get(metric)
            threshold = report.thresholds.get(metric)
            cell = _fmt(value)
            if threshold is not None and value is not None:
                direction = METRICS[metric][0]
                ok = value >= threshold if direction == "min" else value <= threshold
                cell += f" ({'>=' if direction == 'min' else '<='} {threshold}{'' if ok else ' FAIL'})"
            cells.append(cell)
        if any(c != "-" for c in cells):
            rows.append((metric, *cells))
    rows.append(("questions", *[str(len(reports[n].results)) for n in names]))
    rows.append(("seconds", *[f"{reports[n].seconds:.0f}" for n in names]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows)


def markdown(report: EvalReport) -> str:
    """The report as Markdown: metrics (with the baseline side by side), the gate, the failures."""
    ours = report.metrics
    base = report.baseline.metrics if report.baseline else None
    lines = [f"# Eval report: {report.name}", "", f"{len(report.results)} questions, {report.seconds:.0f} s.", ""]
    header = "| metric | ours | threshold |" + (" baseline |" if base else "")
    lines += [header, "|---|---|---|" + ("---|" if base else "")]
    for name in METRICS:
        threshold = report.thresholds.get(name)
        row = f"| {name} | {_fmt(ours.get(name))} | {'-' if threshold is None else threshold} |"
        lines.append(row + (f" {_fmt(base.get(name))} |" if base else ""))
    lat = latency(report.results)
    blat = latency(report.baseline.results) if report.baseline else None
    for key, value in lat.items():
        lines.append(f"| {key} | {_fmt(value)} | - |" + (f" {_fmt(blat[key])} |" if blat else ""))
    lines += ["", "## By kind", "", "```", table(report), "```", "", "## Gate", ""]
    failures = report.gate_failures()
    lines += [f"- FAIL: {f}" for f in failures] or ["- PASS: every metric meets its threshold."]
    lines += ["", "## Failed questions", ""]
    for r in report.results:
        if r.failures():
            lines.append(f"- `{r.id}` ({r.kind}): {'; '.join(r.failures())}. Answer: {r.answer[:200]!r}")
    return "\n".join(lines) + "\n"


def html_page(report: EvalReport) -> str:
    """A self-contained HTML page: each question, the answer, its citations and what failed."""
    esc = html.escape
    rows = []
    for r in report.results:
        status = "ok" if r.correct else "fail"
        cites = "".join(
            f"<li>[{c.n}] {esc(c.source)} — gold: {'yes' if c.gold else 'no'}, "
            f"verbatim: {'yes' if c.verbatim else 'no'}</li>"
            for c in r.citations
        )
        rows.append(
            f"<tr class='{status}'><td>{esc(r.id)}<br><small>{esc(r.kind)}</small></td>"
            f"<td>{esc(r.question)}"
            + (
                f"<br><small>understood as: {esc(r.standalone_question)}</small>"
                if r.standalone_question and r.standalone_question != r.question
                else ""
            )
            + f"</td><td>{'<b>refused</b><br>' if r.refused else ''}{esc(r.answer)}<ul>{cites}</ul></td>"
            f"<td>{esc('; '.join(r.failures()) or 'ok')}</td></tr>"
        )
    metrics = "".join(
        f"<tr><td>{esc(k)}</td><td>{_fmt(v)}</td><td>{report.thresholds.get(k, '-')}</td></tr>"
        for k, v in report.metrics.items()
    )
    gate = "".join(f"<li>{esc(f)}</li>" for f in report.gate_failures()) or "<li>PASS</li>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Eval report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 8px;vertical-align:top}}tr.fail{{background:#fdecea}}tr.ok{{background:#eefaf0}}</style></head><body>
<h1>Eval report: {esc(report.name)}</h1><p>{len(report.results)} questions, {report.seconds:.0f} s</p>
<h2>Gate</h2><ul>{gate}</ul><h2>Metrics</h2><table><tr><th>metric</th><th>value</th><th>threshold</th></tr>
{metrics}</table><h2>Questions</h2><table><tr><th>id</th><th>question</th><th>answer</th><th>result</th></tr>
{"".join(rows)}</table></body></html>
"""


def write_reports(report: EvalReport, folder: Path) -> list[Path]:
    """report.json, report.md and report.html in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "report.json", folder / "report.md", folder / "report.html"]
    paths[0].write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    paths[1].write_text(markdown(report), encoding="utf-8")
    paths[2].write_text(html_page(report), encoding="utf-8")
    return paths


# --- calibration: the answer thresholds swept over the eval sets -----------------------------------------

# The default grid of `assistant eval --calibrate`: the thresholds that decide whether the chain answers,
# quotes a passage instead, or refuses, each a step below and above its default (the current value of each
# is always swept too). Fields Settings does not have are left out; --param NAME=v1,v2 replaces the grid.
CALIBRATION_GRID: dict[str, tuple[float, ...]] = {
    "min_evidence": (0.35, 0.45, 0.55),
    "min_extractive_evidence": (0.4, 0.5, 0.6),
    "min_override_evidence": (0.65, 0.75, 0.85),
}
# Settings fixed once a set is indexed and its model loaded: sweeping them would measure nothing.
_FIXED_IN_CALIBRATION = frozenset(
    {
        "chunk_size",
        "chunk_overlap",
        "embedding_batch_size",
        "max_file_mb",
        "syndication_threshold",
        "syndication_min_words",
        "max_upload_files",
        "lock_timeout_s",
        "port",
        "onnx_threads",
    }
)


class CalibrationError(ValueError):
    """A --param that names no sweepable setting or gives a value the setting does not accept."""


def sweepable_fields() -> list[str]:
    """The numeric Settings fields read while answering (not fixed by the index or the loaded model)."""
    from assistant.config import Settings

    return [
        name
        for name, info in Settings.model_fields.items()
        if info.annotation in (int, float) and name not in _FIXED_IN_CALIBRATION and not name.startswith("llm_")
    ]


def default_grid() -> dict[str, tuple[float, ...]]:
    """CALIBRATION_GRID over the fields Settings has."""
    fields = set(sweepable_fields())
    return {name: values for name, values in CALIBRATION_GRID.items() if name in fields}


def parse_params(specs: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """`NAME=v1,v2,...` options as a grid; each value checked by Settings itself."""
    from pydantic import ValidationError

    from assistant.config import Settings

    fields = sweepable_fields()
    grid: dict[str, tuple[float, ...]] = {}
    for spec in specs:
        name, sep, raw = spec.partition("=")
        name = name.strip()
        if not sep or not raw.strip():
            raise CalibrationError(f"--param {spec!r}: write NAME=v1,v2,... (e.g. min_evidence=0.35,0.45,0.55)")
        if name not in fields:
            raise CalibrationError(f"--param {name}: not a setting calibrate can sweep; it can: {', '.join(fields)}")
        values: list[float] = []
        for item in raw.split(","):
            overrides: dict[str, Any] = {name: item.strip()}
            try:
                values.append(getattr(Settings(**overrides), name))
            except ValidationError as exc:
                why = exc.errors()[0]["msg"]
                raise CalibrationError(f"--param {name}: {item.strip()!r} is not a valid value ({why})") from exc
        grid[name] = tuple(dict.fromkeys(values))
    return grid


def grid_points(grid: dict[str, tuple[float, ...]], current: dict[str, float]) -> list[dict[str, float]]:
    """Every combination of the grid's values, each field's current value among them."""
    axes = [sorted({*values, current[name]}) for name, values in grid.items()]
    return [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*axes)]


@dataclass
class CalibrationPoint:
    """One setting of the swept fields and each set's report under it."""

    values: dict[str, Any]  # settings of the point ("without": the component an ablation switches off)
    current: bool = False
    reports: dict[str, EvalReport] = field(default_factory=dict)

    @property
    def passes(self) -> bool:
        """Every set's gate holds at this point."""
        return all(not report.gate_failures() for report in self.reports.values())


@dataclass
class Calibration:
    """A sweep: the points in grid order, the sets, and what the model cost."""

    points: list[CalibrationPoint]
    sets: list[str]
    questions: dict[str, int]
    model_calls: int = 0
    memo_hits: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sets": self.questions,
            "model_calls": self.model_calls,
            "memo_hits": self.memo_hits,
            "seconds": round(self.seconds, 1),
            "points": [
                {
                    "values": p.values,
                    "current": p.current,
                    "passes": p.passes,
                    "sets": {
                        name: {"metrics": r.metrics, "gate_failures": r.gate_failures()}
                        for name, r in p.reports.items()
                    },
                }
                for p in self.points
            ],
        }


def calibrate(
    eval_sets: Sequence[EvalSet],
    grid: dict[str, tuple[float, ...]],
    settings: Settings | None = None,
    llm: BaseChatModel | None = None,
    progress: Callable[[str], None] | None = None,
) -> Calibration:
    """Run every set at every grid point; each set indexed once into its own temporary store.

    One chat model (`llm`, else the one `settings.llm` names) answers every point through a memo, so a
    prompt that several points send is paid for once.
    """
    from assistant.config import Settings

    base = settings or Settings()
    current = {name: getattr(base, name) for name in grid}
    points = [CalibrationPoint(values, values == current) for values in grid_points(grid, current)]
    return sweep(eval_sets, points, base, llm, progress)


# The components `assistant eval --ablate` switches off one at a time, and the settings that do it.
ABLATIONS: dict[str, dict[str, Any]] = {
    "asked-type check": {"check_asked_type": False},
    "speaker check": {"check_speakers": False},
    "mood check": {"check_mood": False},
    "newest evidence": {"prefer_newest": False},
    "name near its quote": {"given_name_window": -1},
    "parts by asked kind": {"parts_by_kind": False},
    "quoted speaker named": {"name_quoted_speakers": False},
}


def ablate(
    eval_sets: Sequence[EvalSet],
    settings: Settings | None = None,
    llm: BaseChatModel | None = None,
    progress: Callable[[str], None] | None = None,
) -> Calibration:
    """Every set with everything on, then with each of ABLATIONS switched off in turn (first point: all on)."""
    from assistant.config import Settings

    base = settings or Settings()
    points = [CalibrationPoint({}, True)]
    for name, overrides in ABLATIONS.items():
        if all(getattr(base, k) == v for k, v in overrides.items()):
            continue  # already off
        points.append(CalibrationPoint({"without": name, **overrides}))
    return sweep(eval_sets, points, base, llm, progress)


def sweep(
    eval_sets: Sequence[EvalSet],
    points: list[CalibrationPoint],
    base: Settings,
    llm: BaseChatModel | None = None,
    progress: Callable[[str], None] | None = None,
) -> Calibration:
    """Run every set at every point (its settings over `base`); each set indexed once into its own store."""
    from assistant.app import Assistant
    from assistant.llm import make_chat_model
    from assistant.memo_llm import MemoChatModel

    labels: list[str] = []
    for eval_set in eval_sets:
        if eval_set.corpus is None:
            raise EvalSetError(f"{eval_set.path} names no corpus: add `corpus: FOLDER` to it to calibrate on it.")
        labels.append(eval_set.name if eval_set.name not in labels else f"{eval_set.name}-{len(labels) + 1}")
    memo = MemoChatModel(inner=llm if llm is not None else make_chat_model(base))
    say = progress or (lambda line: None)
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="assistant-calibrate-") as scratch:
            for label, eval_set in zip(labels, eval_sets, strict=True):
                store = Path(scratch) / label
                indexer = Assistant.from_settings(base.model_copy(update={"persist_dir": store}), llm=memo)
                try:
                    assert eval_set.corpus is not None
                    say(f"[{label}] " + indexer.ingest([eval_set.corpus], progress=False).summary().splitlines()[0])
                    indexer.warm()
                finally:
                    indexer.store.close()  # not close(): that would stop the model every point shares
                for n, point in enumerate(points, start=1):
                    overrides = {k: v for k, v in point.values.items() if k != "without"}
                    assistant = Assistant.from_settings(
                        base.model_copy(update={"persist_dir": store, **overrides}), llm=memo
                    )
                    try:
                        report = run_eval(eval_set, assistant, progress=False)
                    finally:
                        assistant.store.close()
                    point.reports[label] = report
                    m = report.metrics
                    say(
                        f"[{label}] {n}/{len(points)} {_point_label(point.values)}: correct"
                        f" {_fmt(m['answer_correctness'])}, refusal {_fmt(m['refusal_rate'])}"
                        f" ({memo.calls} model calls, {memo.hits} from the memo)"
                    )
    finally:
        if llm is None:
            memo.close()
    questions = {label: len(s.questions) for label, s in zip(labels, eval_sets, strict=True)}
    return Calibration(points, labels, questions, memo.calls, memo.hits, time.perf_counter() - started)


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def _point_label(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in values.items())


CALIBRATION_COLUMNS = (
    ("correct", "answer_correctness"),
    ("refusal", "refusal_rate"),
    ("false ref", "false_refusal_rate"),
    ("cite P", "citation_precision"),
    ("speaker", "speaker_consistency"),
)


def calibration_table(calibration: Calibration) -> str:
    """Per set, one row per grid point: the answer/refusal trade-off, the gate, the current point marked."""
    ablation = any("without" in p.values for p in calibration.points)
    fields = ["without"] if ablation else (list(calibration.points[0].values) if calibration.points else [])
    passing = sum(p.passes for p in calibration.points)
    total = calibration.model_calls + calibration.memo_hits
    lines = [
        f"Calibration: {len(calibration.points)} points x {len(calibration.sets)} set(s) in"
        f" {calibration.seconds:.0f} s; model calls: {calibration.model_calls} made, {calibration.memo_hits}"
        f" served from the memo" + (f" ({calibration.memo_hits / total:.0%})." if total else "."),
        f"'*' marks the current settings; 'PASS' a point where every set's gate holds"
        f" ({' and '.join(calibration.sets)}).",
    ]
    for name in calibration.sets:
        rows = [("", *fields, *[c for c, _ in CALIBRATION_COLUMNS], "gates")]
        for p in calibration.points:
            report = p.reports[name]
            failed = [f.split(" ", 1)[0] for f in report.gate_failures()]
            gate = "PASS" if p.passes else ("fails " + ", ".join(failed) if failed else "fails another set")
            rows.append(
                (
                    "*" if p.current else "",
                    *[_value(p.values.get(f, "nothing (all on)")) for f in fields],
                    *[_fmt(report.metrics.get(m)) for _, m in CALIBRATION_COLUMNS],
                    gate,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines += ["", f"[{name}] {calibration.questions[name]} questions"]
        lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    current = next((p for p in calibration.points if p.current), None)
    lines.append("")
    lines.append(
        f"{passing} of {len(calibration.points)} points pass every gate"
        + (f"; the current one {'does' if current.passes else 'does not'}." if current else ".")
    )
    return "\n".join(lines)
