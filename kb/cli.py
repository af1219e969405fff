"""The `kb` command line. Every user error is one line (no traceback) and a non-zero exit."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kb.config import Settings, load_settings
from kb.errors import KBError


def _settings(**overrides: Any) -> Settings:
    return load_settings({k: v for k, v in overrides.items() if v is not None})


def handle_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KBError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted; nothing live was changed.", err=True)
            sys.exit(130)

    return wrapper


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))


corpus_option = click.option("--corpus", type=click.Path(path_type=Path), help="Corpus directory [env KB_CORPUS].")
index_option = click.option("--index", type=click.Path(path_type=Path), help="Index directory [env KB_INDEX].")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="renewal-kb")
def main() -> None:
    """续证助手 renewal-kb: build, search and serve the licence-renewal knowledge base."""


@main.command("prepare-model")
@handle_errors
def prepare_model_cmd() -> None:
    """Convert/verify the embedding model so it loads offline (idempotent)."""
    from kb.embed import prepare_model

    settings = _settings()
    loc = prepare_model(settings)
    click.echo(f"Model {loc.name} ready at {loc.path}")


@main.command()
@corpus_option
@index_option
@click.option("--force", is_flag=True, help="Rebuild even when the corpus has not changed.")
@click.option("--wait", "wait", type=float, default=0.0, show_default=True, help="Seconds to wait for another build's lock.")
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
@handle_errors
def build(corpus: Path | None, index: Path | None, force: bool, wait: float, as_json: bool) -> None:
    """Build or refresh the index from the corpus (only changed chunks are re-embedded)."""
    from kb.indexer import build_index

    settings = _settings(corpus=corpus, index=index)
    bars: dict[str, Any] = {}

    def on_stage(stage: str, done: int, total: int) -> None:
        if as_json or stage != "embed" or total == 0:
            return
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = click.progressbar(length=total, label="Embedding", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        report = build_index(settings, force=force, on_stage=on_stage, lock_wait=wait)
    finally:
        for bar in bars.values():
            bar.__exit__(None, None, None)
    if as_json:
        _echo_json(report.to_dict())
        return
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(report.summary())


@main.command()
@corpus_option
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@handle_errors
def status(corpus: Path | None, index: Path | None, as_json: bool) -> None:
    """Does the live index match the corpus and settings? Exit 0 fresh, 1 stale, 2 missing or broken."""
    from kb.freshness import index_status

    st = index_status(_settings(corpus=corpus, index=index))
    if as_json:
        _echo_json(st.to_dict())
    else:
        click.echo(f"{st.state}: {st.message}")
        if st.build_id and st.created_at:
            click.echo(f"  build {st.build_id}, created {st.created_at}")
        for label, names in (("added", st.added), ("changed", st.changed), ("removed", st.removed)):
            for name in names:
                click.echo(f"  {label:>8}  {name}")
        for phrase in st.parameters:
            click.echo(f"  settings  {phrase}")
    sys.exit(st.exit_code)


@main.command()
@corpus_option
@index_option
@click.option("--debounce", type=click.FloatRange(0.0, 3600.0), default=1.0, show_default=True,
              help="Seconds the corpus must stay unchanged before a rebuild starts.")
@click.option("--poll", type=click.FloatRange(0.05, 3600.0), default=0.5, show_default=True,
              help="Seconds between scans of the corpus.")
@handle_errors
def watch(corpus: Path | None, index: Path | None, debounce: float, poll: float) -> None:
    """Rebuild the index (incrementally) whenever files under the corpus change. Ctrl-C stops."""
    from datetime import datetime

    from kb.watch import watch as watch_corpus

    settings = _settings(corpus=corpus, index=index)

    def stamp() -> str:
        return datetime.now().strftime("%H:%M:%S")

    def on_report(report: Any) -> None:
        for warning in report.warnings:
            click.echo(f"{stamp()} Warning: {warning}", err=True)
        click.echo(f"{stamp()} {report.summary()}")

    def on_error(message: str) -> None:
        click.echo(f"{stamp()} Error: {message}", err=True)

    click.echo(f"Watching {settings.corpus} -> {settings.index} (debounce {debounce:g}s). Ctrl-C stops.", err=True)
    try:
        watch_corpus(settings, debounce_s=debounce, poll_s=poll, on_report=on_report, on_error=on_error)
    except KeyboardInterrupt:
        click.echo("Stopped watching.", err=True)


@main.command()
@click.argument("query")
@index_option
@click.option("--top", "top_k", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option("--mode", type=click.Choice(["hybrid", "dense", "bm25"]), default="hybrid", show_default=True)
@click.option("--licence", "licences", multiple=True, help="Only documents for this licence id (repeatable).")
@click.option("--topic", "topics", multiple=True, help="Only documents with this topic id (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="JSON array of hits.")
@handle_errors
def search(query: str, index: Path | None, top_k: int, mode: str, licences: tuple[str, ...],
           topics: tuple[str, ...], as_json: bool) -> None:
    """Search the index. QUERY '-' reads one query per stdin line and prints one JSON array per line."""
    from kb.engine import KnowledgeBase
    from kb.errors import InputError
    from kb.types import SearchFilters

    kb = KnowledgeBase.open(settings=_settings(index=index))
    filters = SearchFilters(licences=licences, topics=topics)
    if query == "-":
        for line in sys.stdin:
            line = line.strip()
            if not line:
                _echo_json([])
                continue
            try:
                hits = kb.search(line, top_k, mode=mode, filters=filters)
            except InputError as exc:
                _echo_json({"error": str(exc)})
                continue
            _echo_json([h.to_dict() for h in hits])
        return
    hits = kb.search(query, top_k, mode=mode, filters=filters)
    if as_json:
        _echo_json([h.to_dict() for h in hits])
        return
    if not hits:
        click.echo("No results.")
    for h in hits:
        where = f"{h.title}" + (f" > {h.heading}" if h.heading else "")
        click.echo(click.style(f"{h.rank}. {where}", bold=True) + f"  [{h.doc_id}]")
        click.echo(f"   score {h.score:.4f}  confidence {h.confidence:.2f}  "
                   + "  ".join(f"{k} {v:.3f}" for k, v in h.scores.items()))
        click.echo("   " + h.text.replace("\n", "\n   "))


@main.command()
@corpus_option
@click.option("--json", "as_json", is_flag=True, help="Problems as a JSON array.")
@handle_errors
def check(corpus: Path | None, as_json: bool) -> None:
    """Validate the corpus: front matter, vocabularies, duplicates, empty sections, sources,
    paragraph length, encoding, traditional characters, contact details, substantive sections
    without a FAQ key. Exit 1 on problems."""
    from kb.check import check_corpus

    settings = _settings(corpus=corpus)
    problems, count = check_corpus(settings.corpus)
    if as_json:
        _echo_json([{"path": p.path, "line": p.line, "message": p.message} for p in problems])
    else:
        for problem in problems:
            click.echo(str(problem))
        click.echo(f"Checked {count} documents in {settings.corpus}: {len(problems)} problem(s).", err=True)
    if problems:
        sys.exit(1)


@main.command()
@index_option
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def info(index: Path | None, as_json: bool) -> None:
    """Versions, model, index location, build time and counts."""
    from kb.info import collect_info

    data = collect_info(_settings(index=index))
    if as_json:
        _echo_json(data)
        return
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        click.echo(f"{key:>14}: {value}")


@main.command("eval")
@index_option
@click.option("--questions", type=click.Path(path_type=Path), help="A .jsonl file or a folder of them.")
@click.option("--split", type=click.Choice(["all", "tune", "heldout"]), default="all", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--calibrate", is_flag=True,
              help="Instead: the chat's off-topic threshold, false-grounded/false-ungrounded rates per min_confidence.")
@click.option("--chat", is_flag=True,
              help="Instead: ask the chat each question; how often its answer cites a passage that answers it.")
@handle_errors
def eval_cmd(index: Path | None, questions: Path | None, split: str, as_json: bool, calibrate: bool, chat: bool) -> None:
    """Retrieval quality on the labelled question set: hit@1/3/5 and MRR@10 per method."""
    if calibrate:
        _calibrate(index, questions, as_json)
        return
    if chat:
        _eval_chat(index, questions, as_json)
        return
    from kb.engine import KnowledgeBase
    from kb.evaluate import evaluate, format_table, load_questions

    settings = _settings(index=index)
    qs = load_questions(questions or settings.eval_questions)
    kb = KnowledgeBase.open(settings=settings)
    results = evaluate(kb, qs)
    if as_json:
        _echo_json(results)
        return
    click.echo(format_table(results, split))


def _eval_chat(index: Path | None, questions: Path | None, as_json: bool) -> None:
    from datetime import date

    from kb.engine import KnowledgeBase
    from kb.evaluate import evaluate_chat, format_chat_table, load_questions

    settings = _settings(index=index)
    qs = load_questions(questions or settings.eval_questions)
    results = evaluate_chat(KnowledgeBase.open(settings=settings), qs, date.today())
    if as_json:
        _echo_json(results)
        return
    click.echo(format_chat_table(results))


def _calibrate(index: Path | None, questions: Path | None, as_json: bool) -> None:
    from kb.engine import KnowledgeBase
    from kb.evaluate import load_questions
    from kb.scope import calibrate, format_calibration, load_offtopic

    settings = _settings(index=index)
    path = questions or settings.eval_questions
    on_topic = [(q.id, q.question, q.split) for q in load_questions(path)]
    off_topic = load_offtopic(path if path.is_dir() else path.parent)
    result = calibrate(KnowledgeBase.open(settings=settings), on_topic, off_topic)
    result["current_min_confidence"] = settings.min_confidence
    if as_json:
        _echo_json(result)
        return
    click.echo(format_calibration(result))
    click.echo(f"Configured min_confidence: {settings.min_confidence:.2f}")


@main.command()
@click.argument("message")
@index_option
@click.option("--today", help="Date to compute deadlines from, YYYY-MM-DD [default: today].")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (answer, grounded, situation, deadline, "
              "sources, follow_up, notice).")
@handle_errors
def ask(message: str, index: Path | None, today: str | None, as_json: bool) -> None:
    """Ask the chat one question. MESSAGE '-' reads one message per stdin line, each its own
    conversation, and prints one JSON object per line."""
    from datetime import date

    from kb.conversation import Conversation
    from kb.engine import KnowledgeBase
    from kb.errors import InputError

    day = None
    if today is not None:
        try:
            day = date.fromisoformat(today.strip())
        except ValueError:
            raise InputError(f"--today {today!r} is not a date; use YYYY-MM-DD, e.g. --today 2026-06-01.") from None
    kb = KnowledgeBase.open(settings=_settings(index=index))
    if message == "-":
        for line in sys.stdin:
            try:
                _echo_json(kb.ask(line.rstrip("\n"), Conversation(), today=day).to_dict())
            except InputError as exc:
                _echo_json({"error": str(exc)})
        return
    answer = kb.ask(message, Conversation(), today=day)
    if as_json:
        _echo_json(answer.to_dict())
        return
    click.echo(answer.markdown)
    if answer.notice:
        click.echo(f"\n({answer.notice})", err=True)


@main.command()
@index_option
@click.option("--queries", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="Timed queries per search mode (the eval questions, cycled).")
@click.option("--synthetic", type=click.IntRange(0, 10_000_000), default=100_000, show_default=True,
              help="Also search a synthetic index of this many chunks (0: skip).")
@click.option("--suite", "suite", default="load,search,ask,build", show_default=True,
              help="Comma-separated: load, search, ask, build, rebuild, or all.")
@click.option("--json", "as_json", is_flag=True, help="The full report as JSON.")
@handle_errors
def bench(index: Path | None, queries: int, synthetic: int, suite: str, as_json: bool) -> None:
    """Latency (per stage), load times, build throughput and memory, as a Markdown table."""
    from kb.bench import format_markdown, parse_suites, run

    suites = parse_suites(suite)
    result = run(_settings(index=index), queries=queries, synthetic=synthetic, suites=suites,
                 log=lambda msg: click.echo(msg, err=True))
    if as_json:
        _echo_json(result)
        return
    click.echo(format_markdown(result))


@main.command()
@index_option
@click.option("--host", help="Interface to bind [env KB_HOST, default 127.0.0.1].")
@click.option("--port", type=int, help="Port [env KB_PORT, default 7860].")
@handle_errors
def serve(index: Path | None, host: str | None, port: int | None) -> None:
    """Start the web app."""
    from app.main import serve as serve_app

    serve_app(_settings(index=index, host=host, port=port))


if __name__ == "__main__":  # pragma: no cover
    main()
