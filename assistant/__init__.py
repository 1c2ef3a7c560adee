"""Chat assistant for 人社厅发〔2020〕80号 and its annex: parse → index → retrieve → answer → present."""
from .config import Config
from .records import Answer, Citation, Turn

__all__ = ["Assistant", "Answer", "Citation", "Config", "Turn", "__version__"]


def __getattr__(name: str):
    # The pipeline (chromadb, jieba, the linker's tables) loads on first use of `Assistant`, not on any import of
    # the package: `assistant feedback export`, `assistant parse` and the CLI's --help stay fast.
    if name in ("Assistant", "__version__"):
        from . import assistant as _pipeline

        return getattr(_pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
