"""The answer pipeline: plan -> retrieve -> rank -> select -> generate -> verify -> fall back -> present.

Each step is a module of its own working on one typed state, the `Turn` (assistant/turn.py):
- plan (`plan.py`): the standalone question, its parts, what it asks for, its time;
- retrieve, rank, select (`search.py` over `retrieval.py`, `rerank.py`, `evidence.py`): chunks and sentences;
- generate (`generate.py`): the prompt and the model's streamed answer;
- verify (`verify.py`, `citations.py`): verbatim quotes, speakers, the kind of thing asked;
- fall back (`fallback.py`): quoted sentences where the model's answer cannot be used;
- present (`present.py`): the Answer, dated where time matters, or a refusal with related facts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda

from assistant.citations import CitationChecker
from assistant.config import Settings
from assistant.fallback import Fallback, quoted_sentences
from assistant.generate import Generator
from assistant.language import Language
from assistant.lexical import Analyzer
from assistant.plan import Planner
from assistant.present import Presenter
from assistant.prompts import Prompts
from assistant.rerank import Reranker
from assistant.retrieval import Filters, HybridRetriever
from assistant.search import Searcher, SentenceVectors
from assistant.stages import measuring, stage
from assistant.turn import Answer, Message, Sources, Turn, human_date
from assistant.verify import Verifier

__all__ = ["Answer", "AnswerChain", "Message", "Sources", "human_date", "quoted_sentences"]


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
        language: Language,
        judge: Reranker | None = None,
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.llm = llm
        self.language = language
        self.planner = Planner(settings, llm, prompts, analyzer, language)
        self.vectors = SentenceVectors(retriever.store.embeddings, settings.sentence_cache)
        self.searcher = Searcher(
            settings,
            retriever,
            self.vectors,
            count_tokens,
            self.grade,
            language.opens_on_reference,
            judge,
        )
        self.generator = Generator(settings, llm, prompts, count_tokens)
        checker = CitationChecker(
            analyzer,
            settings.min_support,
            language if settings.check_speakers else None,
            clearly_better=settings.clearly_better_support,
            min_anchor=settings.min_anchor,
            name_window=settings.given_name_window,
            quarantine_echo=settings.quarantine_echo,
            mood=settings.check_mood,
        )
        self.verifier = Verifier(checker, self.answers)
        self.fallback = Fallback(
            settings, analyzer, self.vectors, retriever.store.embeddings.embed_query, self.answers, language, judge
        )
        self.presenter = Presenter(prompts, language, settings.name_quoted_speakers)

    def answers(self, question: str, sentence: str, before: str = "") -> bool:
        """Whether `sentence` holds the kind of thing `question` asks for, beyond the question's own words
        (`before`: the text just before the sentence, where 'she' in it was named)."""
        if not self.settings.check_asked_type:
            return True
        return self.language.answers(self.language.question(question), sentence, before)

    def grade(self, question: str, sentence: str, before: str = "") -> float:
        """How surely `sentence` holds what `question` asks: 0 not at all, 1 it holds it, 2 as the subject or
        agent of the question's own verb ('Who led it?': 'it was led by Ana Lind')."""
        if not self.answers(question, sentence, before):
            return 0.0
        if not self.settings.check_asked_type:
            return 1.0
        return 2.0 if self.language.fills_slot(self.language.question(question), sentence, before) else 1.0

    # --- the Runnable --------------------------------------------------------------------------

    def runnable(self) -> Runnable[Any, Answer]:
        """An LCEL Runnable: input {"question", "history"?, "filters"?} (or a plain string) -> Answer."""

        def normalise(inp: Any) -> dict[str, Any]:
            return {"question": inp} if isinstance(inp, str) else dict(inp)

        def generate(inputs: Iterator[dict[str, Any]]) -> Iterator[Answer]:
            for inp in inputs:
                for part in self.run(inp["question"], inp.get("history"), inp.get("filters")):
                    if isinstance(part, Answer):
                        yield part

        return (RunnableLambda(normalise) | RunnableGenerator(generate)).with_config(run_name="grounded_answer")

    # --- one question --------------------------------------------------------------------------

    def run(
        self,
        question: str,
        history: Sequence[Message] | None = None,
        filters: Filters | None = None,
        decompose: bool = True,
    ) -> Iterator[Sources | Answer]:
        """Yield the Sources the model is about to read, then partial answers (text deltas) as it writes, then
        the verified final Answer. Each step's seconds go to the Answer's `timings` (see `stages`)."""
        turn = Turn(question, history or (), filters, decompose)
        with measuring(turn.timings):
            self.generator.preload()  # a first question in a new process: the model loads meanwhile,
            self.searcher.preload()  # and so do the index and the embeddings, while spaCy loads to plan
            with stage("plan_s"):
                self.planner(turn)
            if turn.refusal:
                yield Sources(turn.question, [], turn.standalone or turn.question)
                yield self.presenter.refusal(turn)
                return
            self.searcher(turn)
            if turn.refusal:
                yield Sources(turn.question, list(turn.passages), turn.standalone)
                yield self.presenter.refusal(turn)
                return
            self.generator.prepare(turn)
            turn.timings["sources_s"] = turn.elapsed()
            yield Sources(turn.question, list(turn.prompt_passages), turn.standalone)
            for delta in self.generator(turn):
                yield Answer(turn.question, delta, final=False)
            with stage("verify_s"):
                self.verifier(turn)
            with stage("fallback_s"):
                self.fallback(turn)
            if turn.refusal:
                yield self.presenter.refusal(turn)
                return
            yield self.presenter.answer(turn)

    def rewrite(self, question: str, history: Sequence[Message]) -> str:
        """The follow-up as a standalone question (see `Planner.rewrite`)."""
        return self.planner.rewrite(question, history)

    def prime(self) -> str:
        """Run the fixed prompt prefix through the model once, or restore it from disk (see `Generator.prime`)."""
        return self.generator.prime()
