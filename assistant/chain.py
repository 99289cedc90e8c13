"""The answer chain: rewrite -> retrieve -> select evidence -> prompt -> LLM -> verified Answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda

from assistant.chunking import Span, split_sentences
from assistant.citations import (
    CheckedSentence,
    CheckResult,
    Citation,
    CitationChecker,
    join_sentences,
    roles_match,
)
from assistant.config import Settings
from assistant.evidence import (
    Evidence,
    EvidenceSelector,
    answers_kind,
    in_time,
    is_attribution,
    is_follow_up,
    is_steering,
    is_time_sensitive,
    merge_passages,
    named,
    part_query,
    split_compound,
    years,
)
from assistant.language import Language, Question
from assistant.lexical import STOPWORDS, Analyzer
from assistant.llm import LLMUnavailableError, describe_llm_error
from assistant.prompts import Prompts
from assistant.retrieval import Filters, HybridRetriever, Passage

Message = dict[str, str]
_LOWER_LEADS = frozenset(
    [
        "The",
        "It",
        "A",
        "An",
        "This",
        "That",
        "These",
        "Those",
        "There",
        "Its",
        "Their",
        "His",
        "Her",
        "They",
        "He",
        "She",
    ]
)
_SENTENCE_CACHE = 20_000  # sentence vectors kept per process
_MIN_RELATED = 0.3  # least lexical evidence for passages to be offered as related facts in a refusal
_YEAR_CHUNKS = 2  # chunks of the named year added to a compound part's retrieval
_PART_COVERED = 0.5  # share of a compound question part's words an answer must hold to count as answering it


@dataclass
class Answer:
    """A verified answer (or refusal), its citations, the passages used, timings and a trace.

    While streaming, partial Answers (final=False) carry text deltas; adding them up gives the final Answer.
    """

    question: str
    text: str
    refused: bool = False
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    standalone_question: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    trace: dict[str, Any] = field(default_factory=dict)
    final: bool = True

    def __add__(self, other: Answer) -> Answer:
        if other.final:
            return other
        return replace(self, text=self.text + other.text, final=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "standalone_question": self.standalone_question,
            "passages": [
                {k: getattr(p, k) for k in ("id", "source", "outlet", "published", "title", "start", "end", "text")}
                for p in self.passages
            ],
            "timings": self.timings,
            "trace": self.trace,
        }


def human_date(iso: str) -> str:
    """'July 2, 2020' for '2020-07-02'."""
    try:
        d = date.fromisoformat(iso)
    except ValueError:
        return iso or "undated"
    return f"{d.strftime('%B')} {d.day}, {d.year}"


class AnswerChain:
    """Answers one question from the corpus; every sentence of the result carries a verified quote."""

    def __init__(
        self,
        settings: Settings,
        retriever: HybridRetriever,
        llm: BaseChatModel,
        prompts: Prompts,
        analyzer: Analyzer,
        count_tokens: Callable[[str], int],
        language: Language | None = None,
    ) -> None:
        self.settings = settings
        self.language = language
        self.retriever = retriever
        self.llm = llm
        self.prompts = prompts
        self.analyzer = analyzer
        self.count_tokens = count_tokens
        self.checker = CitationChecker(analyzer, settings.min_support, language if settings.check_speakers else None)
        self.embeddings = retriever.store.embeddings
        self._sentence_vectors: dict[str, np.ndarray] = {}

    # --- the Runnable --------------------------------------------------------------------------

    def runnable(self) -> Runnable[Any, Answer]:
        """An LCEL Runnable: input {"question", "history"?, "filters"?} (or a plain string) -> Answer."""

        def normalise(inp: Any) -> dict[str, Any]:
            return {"question": inp} if isinstance(inp, str) else dict(inp)

        def generate(inputs: Iterator[dict[str, Any]]) -> Iterator[Answer]:
            for inp in inputs:
                yield from self.run(inp["question"], inp.get("history"), inp.get("filters"))

        return (RunnableLambda(normalise) | RunnableGenerator(generate)).with_config(run_name="grounded_answer")

    # --- one question --------------------------------------------------------------------------

    def run(
        self,
        question: str,
        history: Sequence[Message] | None = None,
        filters: Filters | None = None,
        decompose: bool = True,
    ) -> Iterator[Answer]:
        """Yield partial answers (text deltas) as the model writes, then the verified final Answer."""
        started = time.perf_counter()
        question = (question or "").strip()
        timings: dict[str, float] = {}
        trace: dict[str, Any] = {}
        if not question:
            yield self._refusal(
                question,
                "Please type a question about U.S.-South Korea coordination on North Korea.",
                "empty question",
                started,
            )
            return
        if len(question) > self.settings.max_question_chars:
            yield self._refusal(
                question,
                f"Your question is {len(question):,} characters long; the limit is "
                f"{self.settings.max_question_chars:,}. Please shorten it.",
                "question too long",
                started,
            )
            return
        if is_steering(question):
            yield self._refusal(question, self.prompts.render("rejected"), "steering attempt", started)
            return

        standalone = question
        if history and is_follow_up(question):
            t = time.perf_counter()
            standalone = self.rewrite(question, history)
            timings["rewrite_s"] = time.perf_counter() - t
            trace["rewrite"] = {"from": question, "to": standalone}
            if is_steering(standalone):
                yield self._refusal(question, self.prompts.render("rejected"), "steering attempt", started)
                return
        query = standalone
        if history and is_follow_up(standalone):
            # the rewrite still leans on the conversation ('improving it'): search with the last question too
            last_user = next((m["content"] for m in reversed(history) if m.get("role") == "user"), "")
            query = f"{standalone} {last_user}".strip()
            trace["search_query"] = query

        parts = split_compound(standalone) if decompose else [standalone]
        t = time.perf_counter()
        shape = self._shape(standalone)
        trace["asked"] = sorted(shape.asked) if shape else None
        index = self.retriever.lexical_index()
        selector = EvidenceSelector(self.analyzer, index.idf)
        vector = self.embeddings.embed_query(query)
        if len(parts) == 1:
            chunks = self.retriever.search(query, self.settings.top_k, filters, vector)
            recent = self.settings.recency_weight if self._about_present(standalone, shape) else 0.0
            if recent:
                trace["prefer_recent"] = recent
            evidence = self._evidence(
                selector, query, chunks, vector, self.settings.max_evidence_sentences, recent=recent
            )
        else:
            trace["parts"] = parts
            chunks, evidence = self._compound_evidence(selector, standalone, parts, filters)
        timings["retrieve_s"] = time.perf_counter() - t
        trace["retrieved"] = [{"id": c.id, "source": c.source, "score": round(c.score, 5)} for c in chunks]
        similarity = max((c.similarity for c in chunks), default=0.0)
        strength = evidence.strength + similarity
        trace["evidence"] = {"lexical": round(evidence.strength, 3), "dense": round(similarity, 3)}
        passages = evidence.passages
        if not passages or strength < self.settings.min_evidence:
            trace["refusal_reason"] = "evidence too weak for the question (LLM not called)"
            # passages that share too few of the question's words are not "related facts", just noise
            related = passages if evidence.strength >= _MIN_RELATED else []
            yield self._refuse_with_related(question, standalone, related, started, timings, trace)
            return

        messages, passages = self._messages(standalone, passages)
        trace["prompt_tokens_estimate"] = sum(self.count_tokens(str(m.content)) for m in messages)
        raw = ""
        t = time.perf_counter()
        try:
            for chunk in self.llm.stream(messages):
                delta = chunk.content if isinstance(chunk.content, str) else ""
                if delta:
                    if "first_token_s" not in timings:
                        timings["first_token_s"] = time.perf_counter() - started
                    raw += delta
                    yield Answer(question, delta, final=False)
        except LLMUnavailableError:
            raise
        except Exception as exc:  # a remote backend's connection, timeout or HTTP error
            raise LLMUnavailableError(describe_llm_error(exc, self.settings)) from exc
        timings["generate_s"] = time.perf_counter() - t
        trace["model_output"] = raw

        checked = self.checker.check(raw, passages, standalone, index.idf)
        trace["dropped_sentences"] = checked.dropped
        trace["repaired_citations"] = checked.repaired
        if (
            checked.sentences
            and len(parts) == 1
            and not any(self._answers(standalone, s.text) for s in checked.sentences)
        ):
            # verified, but not an answer: 'how much did it cost?' answered with megawatts
            trace["not_an_answer"] = [s.text for s in checked.sentences]
            checked = CheckResult([], [], [*checked.dropped, *trace["not_an_answer"]], checked.repaired, False)
        if not checked.sentences:
            # the model's answer failed the check, or it said it does not know: quote the best sentence
            # instead when it clearly answers (a stricter bar when the model itself found no answer)
            least = self.settings.min_override_evidence if checked.model_refused else None
            if len(parts) > 1:  # each part on its own: a narrower question, a clearer best sentence
                checked = self._complete_parts(standalone, parts, checked, passages, selector, trace, least)
            else:
                checked = self._extract(standalone, passages, selector, vector, trace, least) or checked
        if not checked.sentences:
            if checked.model_refused:
                trace["refusal_reason"] = "the model found no answer in the passages"
            else:
                trace["refusal_reason"] = "no sentence of the model's answer was supported by a passage"
            yield self._refuse_with_related(question, standalone, passages, started, timings, trace)
            return
        if len(parts) > 1:
            checked = self._complete_parts(standalone, parts, checked, passages, selector, trace)
        sentences = self._date_sentences(checked, standalone)
        text = join_sentences(sentences)
        timings["total_s"] = time.perf_counter() - started
        yield Answer(
            question,
            text,
            refused=False,
            citations=checked.citations,
            passages=passages,
            standalone_question=standalone,
            timings=timings,
            trace=trace,
        )

    # --- steps ---------------------------------------------------------------------------------

    def _shape(self, question: str) -> Question | None:
        """What the question asks for (None without a language model or with the check switched off)."""
        if self.language is None or not self.settings.check_asked_type:
            return None
        return self.language.question(question)

    def _answers(self, question: str, sentence: str) -> bool:
        """Whether `sentence` holds the kind of thing `question` asks for, beyond the question's own words."""
        shape = self._shape(question)
        if shape is None or self.language is None:
            return answers_kind(question, sentence) if self.language is None else True
        return self.language.answers(shape, sentence)

    def _about_present(self, question: str, shape: Question | None) -> bool:
        """A question about now, or about a fact that changes with no time named: the latest evidence wins."""
        if shape is not None and shape.present:
            return True
        asked_years = shape.years if shape is not None else years(question)
        return is_time_sensitive(question) and not asked_years and not (shape is not None and shape.past)

    def _similarities(self, vector: Sequence[float], texts: list[str]) -> list[float]:
        """Cosine similarity of each text to the question vector; sentence vectors are cached."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._sentence_vectors))
        if missing:
            if len(self._sentence_vectors) > _SENTENCE_CACHE:
                self._sentence_vectors.clear()
            for text, vec in zip(missing, self.embeddings.embed_documents(missing), strict=True):
                v = np.asarray(vec, dtype=np.float32)
                self._sentence_vectors[text] = v / (np.linalg.norm(v) or 1.0)
        q = np.asarray(vector, dtype=np.float32)
        q = q / (np.linalg.norm(q) or 1.0)
        return [float(self._sentence_vectors[t] @ q) for t in texts]

    def rewrite(self, question: str, history: Sequence[Message]) -> str:
        """The follow-up as a standalone question (falls back to joining it with the last user turn)."""
        turns = [m for m in history if m.get("role") in ("user", "assistant") and m.get("content")][-4:]
        if not turns:
            return question
        lines = [f"{'User' if m['role'] == 'user' else 'Assistant'}: {_short(m['content'], 300)}" for m in turns]
        prompt = self.prompts.render("rewrite", history="\n".join(lines), question=question)
        last_user = next((m["content"] for m in reversed(turns) if m["role"] == "user"), "")
        fallback = f"{last_user} {question}".strip()
        try:
            reply = self.llm.invoke([HumanMessage(prompt)], stop=["\n"])
        except Exception:  # a rewrite failure must not lose the question
            return fallback
        text = str(reply.content).strip().strip('"').strip()
        q_terms = self.analyzer.term_set(question)
        if not text or len(text) > 3 * len(fallback) + 40 or (q_terms and not q_terms & self.analyzer.term_set(text)):
            return fallback
        if named(question) - named(text):  # the rewrite lost a name the user gave
            return fallback
        return text

    def _compound_evidence(
        self, selector: EvidenceSelector, question: str, parts: list[str], filters: Filters | None
    ) -> tuple[list[Passage], Evidence]:
        """Evidence for 'X in 2019, and Y in 2020?': each part retrieved on its own, the sentences merged.

        A later part borrows the names of the whole question it lacks ('what was he ...' gets 'Biegun'),
        so it can be retrieved without a model call; the model then answers the whole question at once.
        """
        per_part = max(2, -(-self.settings.max_evidence_sentences // len(parts)))
        chunk_lists: list[list[Passage]] = []
        groups: list[list[Passage]] = []
        strengths: list[float] = []
        for i in range(len(parts)):
            query = part_query(question, parts, i)
            vector = self.embeddings.embed_query(query)
            chunks = self.retriever.search(query, self.settings.top_k, filters, vector)
            chunks += self._of_years(query, vector, filters, chunks)
            evidence = self._evidence(selector, query, chunks, vector, per_part, focus=parts[i])
            chunk_lists.append(chunks)
            groups.append(evidence.passages)
            strengths.append(evidence.strength)
        # the parts' retrievals interleaved by rank (the trace and the eval's retrieval metrics read them)
        seen: set[str] = set()
        chunks = []
        for rank in range(max(map(len, chunk_lists), default=0)):
            for found in chunk_lists:
                if rank < len(found) and found[rank].id not in seen:
                    seen.add(found[rank].id)
                    chunks.append(found[rank])
        return chunks, Evidence(merge_passages(groups), max(strengths, default=0.0), [])

    def _of_years(
        self, query: str, vector: Sequence[float], filters: Filters | None, found: list[Passage]
    ) -> list[Passage]:
        """The best chunks published in the years a part names ('... in December 2025?') not yet `found`.

        'Who holds that role in 2025?' needs the 2025 article even when older ones share more of its words.
        """
        wanted = sorted(years(query))
        if not wanted or (filters and (filters.since or filters.until)):
            return []
        dated = Filters(
            outlets=filters.outlets if filters else (), since=f"{wanted[0]}-01-01", until=f"{wanted[-1]}-12-31"
        )
        have = {c.id for c in found}
        extra = self.retriever.search(query, _YEAR_CHUNKS, dated, vector)
        return [c for c in extra if c.id not in have]

    def _evidence(
        self,
        selector: EvidenceSelector,
        query: str,
        chunks: list[Passage],
        vector: Sequence[float],
        max_sentences: int,
        focus: str = "",
        recent: float = 0.0,
    ) -> Evidence:
        return selector.select(
            query,
            chunks,
            max_sentences,
            self.settings.max_passage_tokens,
            self.count_tokens,
            lambda texts: self._similarities(vector, texts),
            focus=focus if focus != query else "",
            answers=lambda sentence: self._answers(query, sentence),
            recent=recent,
        )

    def _best_sentence(
        self,
        question: str,
        passages: list[Passage],
        selector: EvidenceSelector,
        vector: Sequence[float],
        least: float,
        also: str = "",
    ) -> Citation | None:
        """The passage sentence that best answers the question, as citation [1], or None.

        Only a sentence holding at least `least` of the question's words (or of `also`'s: a compound part
        without the names borrowed for it), adding something to them, of the kind the question asks for
        (`answers_kind`), and naming no post 'to X' the question does not.
        """
        if least > 1:
            return None
        q_terms = self.analyzer.term_set(question)
        also_terms = self.analyzer.term_set(also) if also else set()
        wanted = years(also or question)
        best: tuple[float, int, int, int] | None = None
        for i, p in enumerate(passages):
            spans = split_sentences(p.text)
            sims = self._similarities(vector, [sp.text for sp in spans])
            for k, (sp, sim) in enumerate(zip(spans, sims, strict=True)):
                if k + 1 < len(spans) and is_attribution(spans[k + 1].text):
                    # 'The ministry said talks are underway. Spokesperson Park Il made these comments ...'
                    sp = Span(sp.start, spans[k + 1].end, p.text[sp.start : spans[k + 1].end])
                if wanted and not in_time(p, sp.text, wanted):
                    continue  # 'who holds it in 2025?' is not answered by a 2020 article
                dated = f"{sp.text} {human_date(p.published)}" if p.published else sp.text
                lexical = selector.coverage(q_terms, dated)
                if also_terms:
                    lexical = max(lexical, selector.coverage(also_terms, dated))
                if lexical < least or not self._answers(also or question, sp.text):
                    continue
                if not roles_match(self.analyzer, question, sp.text):
                    continue
                # the sentence must add something beyond the question's own words
                if not self.analyzer.term_set(sp.text) - q_terms:
                    continue
                score = (lexical + max(sim, 0.0)) / 2
                if best is None or score > best[0]:
                    best = (score, i, sp.start, sp.end)
        if best is None:
            return None
        _, i, a, b = best
        return Citation.from_passage(1, passages[i], a, b)

    def _extract(
        self,
        question: str,
        passages: list[Passage],
        selector: EvidenceSelector,
        vector: Sequence[float],
        trace: dict[str, Any],
        least: float | None = None,
    ) -> CheckResult | None:
        """Quote the one sentence that best answers the question, when the model's answer cannot be used.

        `least` defaults to settings.min_extractive_evidence (see `_best_sentence`).
        """
        least = self.settings.min_extractive_evidence if least is None else least
        citation = self._best_sentence(question, passages, selector, vector, least)
        if citation is None:
            return None
        trace["extractive"] = "the model's answer could not be used; the best sentence is quoted instead"
        return CheckResult(quoted_sentences(citation), [citation], [], [], False)

    def _complete_parts(
        self,
        question: str,
        parts: list[str],
        checked: CheckResult,
        passages: list[Passage],
        selector: EvidenceSelector,
        trace: dict[str, Any],
        least: float | None = None,
    ) -> CheckResult:
        """For each part of a compound question the answer leaves out, add the best quoted sentence for it.

        `least` (default settings.min_extractive_evidence) is the share of the part's words that sentence
        must hold.
        """
        least = self.settings.min_extractive_evidence if least is None else least
        answer_terms = self.analyzer.term_set(" ".join(s.text for s in checked.sentences))
        sentences, citations = list(checked.sentences), list(checked.citations)
        added: list[str] = []
        for i, part in enumerate(parts):
            if selector.coverage(self.analyzer.term_set(part), " ".join(sorted(answer_terms))) >= _PART_COVERED:
                continue
            query = part_query(question, parts, i)
            vector = self.embeddings.embed_query(query)
            found = self._best_sentence(query, passages, selector, vector, least, also=part)
            if found is None or any(
                (c.source, c.start, c.end) == (found.source, found.start, found.end) for c in citations
            ):
                continue
            cite = replace(found, n=len(citations) + 1)
            citations.append(cite)
            sentences.extend(quoted_sentences(cite))
            answer_terms |= self.analyzer.term_set(cite.quote)
            added.append(part)
        if not added:
            return checked
        trace["completed_parts"] = added
        return replace(checked, sentences=sentences, citations=citations)

    def prime(self) -> None:
        """Run the fixed prompt prefix (system prompt and worked examples) through the model once.

        A model with a prompt cache (the embedded one) then reuses it for every question.
        """
        messages, _ = self._messages("", [])
        self.llm.invoke([*messages[:-1], HumanMessage("Ready?")], max_tokens=1)

    def _messages(self, question: str, passages: list[Passage]) -> tuple[list[BaseMessage], list[Passage]]:
        """System prompt, worked examples and the user prompt within the context window.

        The system prompt and the examples never change, so the model's prompt cache keeps them between
        questions. When the window is too small, the examples go first, then the weakest passages.
        """
        system = SystemMessage(self.prompts.render("system"))
        shots: list[BaseMessage] = [
            HumanMessage(text) if role == "user" else AIMessage(text) for role, text in self.prompts.examples()
        ]
        budget = self.settings.llm_context_window - self.settings.llm_max_tokens
        overhead = 8  # chat-template tokens per message
        kept = list(passages)
        while True:
            body = "\n".join(
                self.prompts.render(
                    "passage",
                    n=i + 1,
                    outlet=p.outlet or "unknown outlet",
                    published=p.published or "undated",
                    text=" ".join(p.text.split()),
                )
                for i, p in enumerate(kept)
            )
            user = HumanMessage(self.prompts.render("answer", passages=body, question=question))
            messages = [system, *shots, user]
            used = sum(self.count_tokens(str(m.content)) + overhead for m in messages)
            if used <= budget:
                return messages, kept
            if shots:
                shots = []
            elif len(kept) > 1:
                kept.pop()
            else:
                return messages, kept

    def _date_sentences(self, checked: CheckResult, question: str) -> list[CheckedSentence]:
        """Say 'As of <date>, per <outlet>' where the answer depends on time or sources differ in date."""
        by_n = {c.n: c for c in checked.citations}
        dates = {by_n[n].published for s in checked.sentences for n in s.citations}
        if not (is_time_sensitive(question) or len(dates) > 1):
            return checked.sentences
        out: list[CheckedSentence] = []
        said: set[tuple[str, str]] = set()
        for s in checked.sentences:
            cite = by_n[s.citations[0]]
            key = (cite.outlet, cite.published)
            if key in said:
                out.append(s)
                continue
            said.add(key)
            first = s.text.split(" ", 1)[0]
            common = first in _LOWER_LEADS or first.lower() in STOPWORDS
            lead = s.text[0].lower() + s.text[1:] if common and not first.isupper() else s.text
            if cite.published:
                out.append(replace(s, text=f"As of {human_date(cite.published)}, per {cite.outlet}, {lead}"))
            else:  # the answer depends on time and its source does not say when it was written
                source = cite.outlet or cite.title or cite.source
                out.append(replace(s, text=f"Per {source}, an undated source, {lead}"))
        return out

    def _refusal(self, question: str, text: str, reason: str, started: float) -> Answer:
        return Answer(
            question,
            text,
            refused=True,
            standalone_question=question,
            timings={"total_s": time.perf_counter() - started},
            trace={"refusal_reason": reason},
        )

    def _refuse_with_related(
        self,
        question: str,
        standalone: str,
        passages: list[Passage],
        started: float,
        timings: dict[str, float],
        trace: dict[str, Any],
    ) -> Answer:
        """The fixed refusal, plus the closest related facts (verbatim quotes) when there are any."""
        related = [p for p in passages[:2] if p.text.strip()]
        if not related:
            text, citations = self.prompts.render("refusal"), []
        else:
            citations = [Citation.from_passage(i + 1, p) for i, p in enumerate(related)]
            facts = "\n".join(
                f"- {c.outlet} ({human_date(c.published)}): “{' '.join(c.quote.split())}” [{c.n}]" for c in citations
            )
            text = f"{self.prompts.render('refusal_related')}\n{facts}"
        timings["total_s"] = time.perf_counter() - started
        return Answer(
            question,
            text,
            refused=True,
            citations=citations,
            passages=passages,
            standalone_question=standalone,
            timings=timings,
            trace=trace,
        )


def quoted_sentences(citation: Citation) -> list[CheckedSentence]:
    """A quote given as the answer, each of its sentences carrying the citation's marker."""
    return [CheckedSentence(" ".join(sp.text.split()), (citation.n,)) for sp in split_sentences(citation.quote)]


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
