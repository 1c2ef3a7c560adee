"""Chat assistant for 人社厅发〔2020〕80号 and its annex: parse → index → retrieve → answer → present."""
from .assistant import Assistant, __version__
from .config import Config
from .records import Answer, Citation, Turn

__all__ = ["Assistant", "Answer", "Citation", "Config", "Turn", "__version__"]
