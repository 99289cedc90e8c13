"""A plain LangChain RAG chain (dense top-k, stuff prompt, no checking): the yardstick for our chain."""

from __future__ import annotations

import re
import time
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from assistant.chain import Answer
from assistant.citations import Citation, is_refusal
from assistant.store import Store

# The textbook prompt, as in LangChain's RAG tutorials; kept here on purpose (it is the baseline's, not ours).
BASELINE_PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "You are an assistant for question-answering tasks. Use the following pieces of retrieved context "
            "to answer the question. Cite the context pieces you use as [n]. If you don't know the answer, "
            "say that you don't know. Use three sentences maximum and keep the answer concise.",
        ),
        ("human", "Context:\n{context}\n\nQuestion: {question}"),
    ]
)


class PlainRag:
    """Dense retrieval -> numbered context -> the same LLM; answers are taken as they come."""

    def __init__(self, store: Store, llm: BaseChatModel, k: int = 4) -> None:
        self.retriever = store.as_langchain().as_retriever(search_kwargs={"k": k})
        self.generate: Runnable[dict[str, Any], str] = BASELINE_PROMPT | llm | StrOutputParser()

    def ask(self, question: str) -> Answer:
        started = time.perf_counter()
        docs: list[Document] = self.retriever.invoke(question)
        context = "\n\n".join(f"[{i + 1}] {d.page_content}" for i, d in enumerate(docs))
        text, first = "", None
        for piece in self.generate.stream({"context": context, "question": question}):
            if piece and first is None:
                first = time.perf_counter() - started
            text += piece
        citations = []
        for n in sorted({int(m) for m in re.findall(r"\[(\d+)\]", text)}):
            if 1 <= n <= len(docs):
                meta = docs[n - 1].metadata
                citations.append(
                    Citation(
                        n=n,
                        source=str(meta.get("source", "")),
                        title=str(meta.get("title", "")),
                        outlet=str(meta.get("outlet", "")),
                        published=str(meta.get("published", "")),
                        quote=docs[n - 1].page_content,
                        start=int(meta.get("start", 0)),
                        end=int(meta.get("end", 0)),
                        passage_id=str(docs[n - 1].id or ""),
                        context=docs[n - 1].page_content,
                    )
                )
        timings = {"total_s": time.perf_counter() - started}
        if first is not None:
            timings["first_token_s"] = first
        return Answer(
            question,
            text.strip(),
            refused=is_refusal(text),
            citations=citations,
            standalone_question=question,
            timings=timings,
            trace={"retrieved": [{"source": d.metadata.get("source", "")} for d in docs]},
        )
