"""The chat pages served by `assistant serve`: the full chat with the annex browser, and the embeddable widget."""
from .app import build_chat, build_widget

__all__ = ["build_chat", "build_widget"]
