"""Shared fixtures: the real corpus, and a real Assistant over an index built in a temporary folder."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from assistant import Assistant, Config  # noqa: E402
from assistant.config import REPO_ROOT  # noqa: E402
from assistant.parse import load_corpus  # noqa: E402
from assistant.profile import NoticeProfile  # noqa: E402

SOURCE = REPO_ROOT / "corpus" / "notice-2020-80.txt"
SHARED_SOURCE = REPO_ROOT.parent / "shared" / "source" / "notice-2020-80.txt"


@pytest.fixture(scope="session")
def corpus():
    return load_corpus(REPO_ROOT / "corpus")


@pytest.fixture(scope="session")
def profile(corpus) -> NoticeProfile:
    """The notice profile: batch words and deadlines as clause 二 states them."""
    return NoticeProfile.load(corpus, REPO_ROOT / "corpus")


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("index")


@pytest.fixture(scope="session")
def assistant(index_dir) -> Assistant:
    return Assistant.load(Config(index_dir=index_dir))


@pytest.fixture()
def ask(assistant):
    """Ask like a user: returns the Answer."""
    def _ask(question, history=None):
        return assistant.ask(question, history)
    return _ask
