"""The `kb` command line. Every user error is one line (no traceback) and a non-zero exit."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable

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
    paragraph length, encoding, traditional characters, contact details. Exit 1 on problems."""
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
@handle_errors
def eval_cmd(index: Path | None, questions: Path | None, split: str, as_json: bool) -> None:
    """Retrieval quality on the labelled question set: hit@1/3/5 and MRR@10 per method."""
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
