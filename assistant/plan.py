"""Plan: what the question is once the conversation is taken into account, and what it asks for.

A follow-up is rewritten as a standalone question, a compound question is split into parts, and the
question is analysed (`Language.question`): the kind of entity it asks for, the years it names, and whether
it is about the present. An empty, overlong or steering question ends the turn here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

from assistant.config import Settings
from assistant.evidence import is_steering, named
from assistant.language import Language, Question
from assistant.lexical import Analyzer
from assistant.prompts import Prompts
from assistant.turn import Message, Turn


class Planner:
    """Fills a Turn's standalone question, search query, parts, question shape and time."""

    def __init__(
        self,
        settings: Settings,
        llm: BaseChatModel,
        prompts: Prompts,
        analyzer: Analyzer,
        language: Language,
    ) -> None:
        self.settings = settings
        self.llm = llm
        self.prompts = prompts
        self.analyzer = analyzer
        self.language = language

    def __call__(self, turn: Turn) -> None:
        question = turn.question = (turn.question or "").strip()
        if not question:
            turn.refusal = "empty question"
            turn.refusal_text = "Please type a question about U.S.-South Korea coordination on North Korea."
            return
        if len(question) > self.settings.max_question_chars:
            turn.refusal = "question too long"
            turn.refusal_text = (
                f"Your question is {len(question):,} characters long; the limit is "
                f"{self.settings.max_question_chars:,}. Please shorten it."
            )
            return
        if is_steering(question):
            turn.refusal, turn.refusal_text = "steering attempt", self.prompts.render("rejected")
            return
        standalone = question
        if turn.history and self.follow_up(question):
            t = time.perf_counter()
            standalone = self.rewrite(question, turn.history)
            turn.timings["rewrite_s"] = time.perf_counter() - t
            turn.trace["rewrite"] = {"from": question, "to": standalone}
            if is_steering(standalone):
                turn.refusal, turn.refusal_text = "steering attempt", self.prompts.render("rejected")
                return
        turn.standalone = turn.query = standalone
        if turn.history and self.follow_up(standalone):
            # the rewrite still leans on the conversation ('improving it'): search with the last question too
            last_user = next((m["content"] for m in reversed(turn.history) if m.get("role") == "user"), "")
            turn.query = f"{standalone} {last_user}".strip()
            turn.trace["search_query"] = turn.query
        turn.parts = self.split(standalone) if turn.decompose else [standalone]
        turn.part_queries = [self.part_query(standalone, turn.parts, i) for i in range(len(turn.parts))]
        if turn.compound:
            turn.trace["parts"] = turn.parts
        turn.shape = self.language.question(standalone)
        turn.trace["asked"] = sorted(turn.shape.asked)
        turn.present = self.about_present(turn.shape)
        turn.changing = turn.present or turn.shape.changing

    def split(self, question: str) -> list[str]:
        """The parts of a compound question ('X in 2019, and what was he by 2020?')."""
        return self.language.split_question(question)

    def follow_up(self, question: str) -> bool:
        """Whether the question leans on the conversation ('And who is his counterpart?')."""
        return self.language.leans_on_context(question)

    def part_query(self, question: str, parts: Sequence[str], i: int) -> str:
        """What to search with for part `i` of a compound question.

        A later part borrows the names of the whole question it lacks ('what was he ...' gets the name). A
        part that points back ('who holds that role in 2025?', 'where did it meet?') also borrows the content
        words of the parts before it (no dates, numbers or question words), so it is searched as a question
        about the same office or body, at its own date; the words a demonstrative points with ('that post')
        are left out, since what they point to is borrowed.
        """
        if i == 0:
            return parts[0]
        points_back = self.language.leans_on_context(parts[i])
        # 'who holds that post now?': the post is what the words borrowed below name
        part = self.language.without_pointed(parts[i]) if points_back else parts[i]
        have = {w.lower() for w in self.language.content_words(part)} | {w.lower() for w in part.split()}
        extra: list[str] = []
        for name in self.language.names(question):
            for word in name.split():
                if word.lower() not in have:
                    have.add(word.lower())
                    extra.append(word)
        if points_back:
            for word in self.language.content_words(" ".join(parts[:i])):
                if word.lower() not in have:
                    have.add(word.lower())
                    extra.append(word)
        return f"{part} {' '.join(extra)}".strip()

    @staticmethod
    def about_present(shape: Question) -> bool:
        """A question about now, or about a fact that changes with no time named: the latest evidence wins."""
        return shape.present or (shape.changing and not shape.years and not shape.past)

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


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
