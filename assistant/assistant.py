"""The library API: `Assistant.load().ask(question, history)` → Answer. The CLI, HTTP API and UI only wrap it."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .answer import GroundedAnswerer
from .config import Config
from .embeddings import load_embeddings
from .index import IndexState, build_evidence, open_index
from .link import EntityLinker
from .frames import FRAMES_FILE, FrameTable
from .intents import EXEMPLARS_FILE, IntentClassifier
from .learn import is_current, load_frames, train
from .normalize import AskInput, HistoryLimits, validate_request
from .parse import load_corpus
from .profile import NoticeProfile
from .records import Answer, Corpus, Grounding, StreamEvent, Turn
from .retrieve import HybridRetriever, token_cache_path
from .sentences import is_current as sentences_current, load_ranker, train as train_sentences
from .understand import Understanding

log = logging.getLogger(__name__)

__version__ = "0.1.0"


def as_turns(history: Iterable[Turn | dict] | None) -> list[Turn]:
    """History as typed turns, without the caps (kept for callers that have already checked it)."""
    return [t if isinstance(t, Turn) else Turn.model_validate(t) for t in (history or [])]


@dataclass
class Assistant:
    config: Config
    corpus: Corpus = field(repr=False)
    index_state: IndexState = field(repr=False)
    retriever: HybridRetriever = field(repr=False)
    answerer: GroundedAnswerer = field(repr=False)
    _llm: object | None = field(default=None, repr=False)

    @classmethod
    def prepare(cls, config: Config | None = None, force: bool = False, rebuild: bool = True) -> IndexState:
        """What `assistant index` makes once for every process that loads later: the Chroma build, the tokenizer's
        word table and the intent exemplars' vectors (the last two beside a folder index)."""
        config = config or Config()
        corpus = load_corpus(config.corpus_dir)
        profile = NoticeProfile.load(corpus, config.corpus_dir)
        embeddings = load_embeddings(config.embedding_model)
        index = open_index(config.index_dir, embeddings, config.embedding_model, config.chroma_url)
        units = build_evidence(corpus, profile)
        state = index.ensure(corpus, units, rebuild=rebuild, force=force)
        if not config.chroma_url:
            linker = EntityLinker(corpus, config.corpus_dir / "aliases.csv", profile, dictionary_dir=config.index_dir)
            HybridRetriever(units=units, index=index, token_cache=token_cache_path(
                config.index_dir, units, linker.dictionary.key)).unit_tokens()
            intents = IntentClassifier(embeddings, config.corpus_dir / EXEMPLARS_FILE, cache_dir=config.index_dir)
            if (config.corpus_dir / FRAMES_FILE).exists():
                understanding = Understanding(corpus, linker, profile, intents)
                if not is_current(understanding, config.corpus_dir):
                    train(understanding, config.corpus_dir)  # the frame model, from the question bank
                if not sentences_current(config.corpus_dir, embeddings):
                    train_sentences(corpus, config.corpus_dir, embeddings)  # the sentence ranker, from the bank
        return state

    @classmethod
    def load(cls, config: Config | None = None) -> "Assistant":
        """Parse-stage output, embeddings and index as the configuration names them; builds a missing index."""
        config = config or Config()
        corpus = load_corpus(config.corpus_dir)
        profile = NoticeProfile.load(corpus, config.corpus_dir)
        units = build_evidence(corpus, profile)
        embeddings = load_embeddings(config.embedding_model)
        index = open_index(config.index_dir, embeddings, config.embedding_model, config.chroma_url)
        state = index.ensure(corpus, units, rebuild=config.rebuild_stale_index)
        # the word table and the exemplar vectors are kept beside a folder index; a replica on a Chroma server has
        # no folder of its own
        cache_dir = None if config.chroma_url else config.index_dir
        linker = EntityLinker(corpus, config.corpus_dir / "aliases.csv", profile, dictionary_dir=cache_dir)
        retriever = HybridRetriever(units=units, index=index, k=config.top_k,
                                    token_cache=token_cache_path(cache_dir, units, linker.dictionary.key))
        intents = IntentClassifier(embeddings, config.corpus_dir / EXEMPLARS_FILE, cache_dir=cache_dir,
                                   margin=config.intent_margin)
        understanding = Understanding(corpus, linker, profile, intents)
        if config.frame_model and (config.corpus_dir / FRAMES_FILE).exists():
            understanding.frames = load_frames(understanding, config.corpus_dir)
            understanding.frame_table = FrameTable.load(config.corpus_dir / FRAMES_FILE)
        answerer = GroundedAnswerer(corpus=corpus, understanding=understanding, retriever=retriever, profile=profile)
        answerer.sentences = load_ranker(corpus, config.corpus_dir, embeddings)
        return cls(config=config, corpus=corpus, index_state=state, retriever=retriever, answerer=answerer)

    @property
    def history_limits(self) -> HistoryLimits:
        return HistoryLimits(turns=self.config.max_history_turns, chars=self.config.max_history_chars)

    def check(self, question: object, history: object = None, id: object = None) -> AskInput:
        """The door check every front end runs first (normalize.validate_request): InputError names what is wrong."""
        return validate_request(question, list(history) if isinstance(history, Iterator) else history, id,
                                self.history_limits)

    def ground(self, question: str, history: Iterable[Turn | dict] | None = None, id=None,
               use_llm: bool | None = None) -> Grounding:
        """The offline pipeline for one question: understanding, retrieval and the grounded answer, with what the
        understanding stage made of it (frame, calibrated confidence) for choosing whether the model is asked.

        With an LLM on:
        * a follow-up is also rewritten by the model into a standalone question. The rewrite is kept only when it
          resolves references and carries no batch, date, item, department or number the user did not say
          (generate.guard_rewrite); a kept rewrite adds retrieval evidence and is shown to the model. It is never
          answered offline as if the user had said it: the offline answer is always the user's own question's.
        * a declined question gets its rank-agreement evidence (generate.agreed_evidence): clause sentences BM25
          and the vector search both rank at the top."""
        request = self.check(question, history, id)
        grounding = self.ground_offline(request.question, request.history, id=request.id, use_llm=use_llm)
        if not self._llm_on(use_llm):
            return grounding
        return self.with_rewrite(grounding, request.history)

    def ground_offline(self, question: str, turns: list[Turn], id=None, use_llm: bool | None = None) -> Grounding:
        """`ground` without the model's rewrite of a follow-up (checked input): what is shown before the model is
        asked."""
        grounding = self.answerer.run(question, turns, id=id)
        if not self._llm_on(use_llm) or grounding.offline.answered:
            return grounding
        from .generate import agreed_evidence

        return grounding.model_copy(update={
            "agreed_evidence": agreed_evidence(self.retriever, grounding.standalone_question)})

    def with_rewrite(self, grounding: Grounding, turns: list[Turn]) -> Grounding:
        """A follow-up's guarded rewrite added to the grounding (evidence, `rewritten_question`), when the model
        will be asked to answer."""
        if not turns or self.llm.choose(grounding).path.value == "offline":
            return grounding  # no follow-up, or the model will not be asked: a rewrite would cost 10 s for nothing
        question = grounding.question
        rewritten = self.llm.rewrite(question, turns)  # the question itself unless a guarded rewrite was kept
        if rewritten == question:
            return grounding
        more = self.retriever.run(rewritten)
        evidence = list({e.doc_id: e for e in grounding.evidence + more}.values())
        return grounding.model_copy(update={"evidence": evidence, "rewritten_question": rewritten})

    @property
    def profile(self) -> NoticeProfile:
        """The notice profile the answerer was built with: batch words and deadlines for every front end."""
        return self.answerer.profile

    @property
    def llm(self):
        """The generating answerer, made on first use (its chat client is kept for the process)."""
        if self._llm is None:
            from .generate import LLMAnswerer

            self._llm = LLMAnswerer(self.config, self.corpus, self.profile)
        return self._llm

    def ask(self, question: str, history: Iterable[Turn | dict] | None = None, id=None,
            use_llm: bool | None = None) -> Answer:
        """The answer to one question. Raises normalize.InputError (a ValueError) for input that cannot be asked:
        a lone surrogate, an empty or too long question, a malformed or too long history, a bad id."""
        request = self.check(question, history, id)
        grounding = self.ground(request.question, request.history, id=request.id, use_llm=use_llm)
        if not self._llm_on(use_llm):
            return grounding.offline
        return self.llm.run(grounding, request.history)

    def stream(self, question: str, history: Iterable[Turn | dict] | None = None, id=None,
               use_llm: bool | None = None) -> Iterator[StreamEvent]:
        """Text deltas as they come, then one final `answer` event carrying the whole Answer. The input is checked
        when the first event is asked for, before any text is produced."""
        request = self.check(question, history, id)
        grounding = self.ground_offline(request.question, request.history, id=request.id, use_llm=use_llm)
        if self._llm_on(use_llm):
            # The offline answer (or a status line) is streamed before the follow-up is rewritten and the model asked.
            yield from self.llm.stream(grounding, request.history,
                                       prepare=lambda g: self.with_rewrite(g, request.history))
            return
        from .generate import sentences_of

        for sentence in sentences_of(grounding.offline.answer):  # whole sentences, as the LLM path streams them
            yield StreamEvent(kind="token", text=sentence)
        yield StreamEvent(kind="answer", answer=grounding.offline)

    def _llm_on(self, use_llm: bool | None) -> bool:
        return self.config.llm_enabled if use_llm is None else use_llm

    def health(self) -> dict:
        """What is serving now: the index build the process actually uses (it follows index/CURRENT), the
        documents it holds, and whether vector search works; answers fall back to BM25 when it does not."""
        serving = self.retriever.index.serving()
        degraded = serving.get("vector_search") != "ok"
        index = {"status": "vector search degraded" if degraded else self.index_state.status,
                 "loaded_as": self.index_state.status, "expected_documents": self.index_state.count,
                 "embedding_model": self.config.embedding_model, **serving}
        return {
            "status": "degraded" if degraded else "ok",
            "version": __version__,
            "index": index,
            "corpus": {"clauses": len(self.corpus.clauses), "annex_rows": len(self.corpus.annex_rows),
                       "source_sha256": self.corpus.source_sha256},
            "llm": {"enabled": self.config.llm_enabled, "model": self.config.llm_model,
                    "base_url": self.config.llm_base_url},
        }
