"""``memp doctor``: what is configured, and does each part really work.

Each check runs the real thing (loads the model and asks it something, embeds texts,
opens the store) and reports ok / FAIL with the reason and what to do.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memp import config


@dataclass
class Check:
    part: str
    ok: bool
    detail: str
    seconds: float


def _run(part: str, fn: Callable[[], str]) -> Check:
    t0 = time.perf_counter()
    try:
        detail = fn()
        ok = True
    except Exception as e:  # a doctor reports every failure instead of stopping
        ok = False
        detail = f"{type(e).__name__}: {e}" if str(e) else traceback.format_exc(limit=1)
    return Check(part, ok, detail, time.perf_counter() - t0)


def check_llm(spec: str, *, quick: bool = False) -> list[Check]:
    from memp.llm import make_llm, parse_llm_spec

    checks: list[Check] = []
    try:
        kind, model, _ = parse_llm_spec(spec)
    except Exception as e:
        return [Check("llm spec", False, str(e), 0.0)]
    if kind not in {"local", "gguf"}:
        checks.append(_run("llm client", lambda: f"{make_llm(spec, cache=False).name} configured"))
        if not checks[-1].ok:
            return checks
    if kind in {"local", "gguf"}:

        def runtime() -> str:
            from memp.llm.local import _import_llama

            return f"llama-cpp-python {_import_llama().__version__}"

        checks.append(_run("llm runtime", runtime))
        if kind == "local":

            def weights() -> str:
                from memp.llm.weights import MODELS, ensure_model, verify_model

                path = ensure_model(model)
                verify_model(MODELS[model], path, full=True, progress=True)
                return f"{path} (sha256 verified)"

            checks.append(_run("llm weights", weights))
    if quick:
        return checks

    def answer() -> str:
        llm = make_llm(spec, cache=False)
        out = llm.complete(
            [
                {
                    "role": "user",
                    "content": "Which of these is a fruit: apple or hammer? Answer with one word.",
                }
            ],
            max_tokens=8,
            choices=["apple", "hammer"],
        )
        return (
            f"{llm.name}: answered {out.text!r} in {out.latency_s:.2f}s "
            f"({out.prompt_tokens} prompt + {out.completion_tokens} completion tokens)"
        )

    checks.append(_run("llm answers", answer))
    return checks


def check_embedder(spec: str, *, quick: bool = False) -> list[Check]:
    from memp.embed import make_embedder

    if quick:
        return [_run("embedder", lambda: make_embedder(spec, cache=False).name)]

    def probe() -> str:
        emb = make_embedder(spec, cache=False)
        v = emb.embed(
            [
                "put a clean apple in the fridge",
                "place a washed apple in the refrigerator",
                "heat some egg in the microwave",
            ]
        )
        near, far = float(v[0] @ v[1]), float(v[0] @ v[2])
        if v.shape != (3, emb.dim):
            raise RuntimeError(f"expected shape (3, {emb.dim}), got {v.shape}")
        verdict = (
            "paraphrase ranks first" if near > far else "WARNING: paraphrase does not rank first"
        )
        return f"{emb.name} dim {emb.dim}: cos(paraphrase)={near:.2f} cos(unrelated)={far:.2f}, {verdict}"

    return [_run("embedder", probe)]


def check_db(db: str, *, default: bool = False) -> list[Check]:
    """``default``: the db is the user-level default location, whose folder memp creates."""

    def probe() -> str:
        path = config.sqlite_path(db)
        if path is not None and not path.exists():
            path = path.resolve()
            if not path.parent.is_dir() and not default:
                raise FileNotFoundError(
                    f"directory {path.parent} does not exist: create it or choose another --db"
                )
            return f"{path} does not exist yet; `memp memory add` creates it (SQLite)"
        from memp.store import open_store

        store = open_store(db)
        try:
            shown = path.resolve() if path is not None else db
            return f"{type(store).__name__} opened {shown}"
        finally:
            close = getattr(store, "close", None)
            if close:
                close()

    return [_run("store", probe)]


def check_caches() -> list[Check]:
    def probe() -> str:
        from memp.llm.cache import default_cache_path
        from memp.llm.weights import cache_root

        llm_cache = config.cache_setting(config.resolve("llm_cache").value)
        emb_cache = config.cache_setting(config.resolve("embed_cache").value)

        def show(v: Path | bool | None, default: str) -> str:
            return "off" if v is None else (default if v is True else str(v))

        return (
            f"cache dir {cache_root()}; completions: {show(llm_cache, str(default_cache_path()))}; "
            f"embeddings: {show(emb_cache, str(cache_root() / 'embeddings.sqlite'))}"
        )

    return [_run("caches", probe)]


def run_doctor(
    llm: str | None = None,
    embedder: str | None = None,
    db: str | None = None,
    *,
    quick: bool = False,
    console: Console | None = None,
) -> bool:
    console = console or Console()
    cfg = config.settings(llm=llm, embedder=embedder, db=db)
    table = Table(title="memp configuration")
    table.add_column("setting")
    table.add_column("value")
    table.add_column("from")
    for key, s in cfg.items():
        table.add_row(key, s.value, s.source)
    console.print(table)
    files = config.config_files()
    if files:
        console.print("config files read: " + ", ".join(str(f) for f in files), soft_wrap=True)
    else:
        console.print(
            f"config files read: none (looked for {config.user_config_path()} and "
            f"./{config.CONFIG_FILE})",
            soft_wrap=True,
        )
    db_path = config.sqlite_path(cfg["db"].value)
    console.print(
        f"database: {db_path.resolve() if db_path is not None else cfg['db'].value}",
        soft_wrap=True,
    )

    checks: list[Check] = []
    with console.status("checking the LLM..."):
        checks += check_llm(cfg["llm"].value, quick=quick)
    with console.status("checking the embedder..."):
        checks += check_embedder(cfg["embedder"].value, quick=quick)
    checks += check_db(cfg["db"].value, default=cfg["db"].source == "default")
    checks += check_caches()

    result = Table(title="checks")
    result.add_column("part")
    result.add_column("status")
    result.add_column("time", justify="right")
    result.add_column("detail", overflow="fold")
    for c in checks:
        status = "[green]ok[/green]" if c.ok else "[red]FAIL[/red]"
        result.add_row(c.part, status, f"{c.seconds:.2f}s", c.detail)
    console.print(result)
    failed = [c for c in checks if not c.ok]
    if failed:
        console.print(f"[red]{len(failed)} check(s) failed[/red]")
    else:
        console.print("[green]all checks passed[/green]")
    return not failed
