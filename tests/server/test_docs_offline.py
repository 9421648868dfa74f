"""/docs works with no network: the page and every asset it loads come from memp's own
server (a real uvicorn on 127.0.0.1), none from a CDN."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

import httpx

from memp.server.http import Service, create_app, running


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "spec-url"} and value:
                self.refs.append(value)


def _assets(html: str) -> list[str]:
    parser = _Refs()
    parser.feed(html)
    # Swagger UI's start-up script names the spec (and any other file) in JS strings.
    scripted = re.findall(r"""(?:url|Url)\s*:\s*['"]([^'"]+)['"]""", html)
    return parser.refs + scripted


def test_docs_pages_load_everything_from_the_same_server(tmp_path):
    db = str(tmp_path / "memp.db")
    svc = Service(db, embedder="hash", llm="none")
    try:
        with running(create_app(db, service=svc)) as url:
            for page in ("/docs", "/redoc"):
                r = httpx.get(url + page)
                assert r.status_code == 200 and "text/html" in r.headers["content-type"]
                refs = _assets(r.text)
                assert any(ref.endswith(".js") for ref in refs), refs
                for ref in refs:
                    full = urljoin(url + page, ref)
                    assert urlparse(full).netloc == urlparse(url).netloc, f"{page} loads {ref}"
                    got = httpx.get(full)
                    assert got.status_code == 200 and got.content, f"{page}: {ref} is missing"
                assert "fonts.googleapis" not in r.text and "cdn." not in r.text
            # The bundle is the real Swagger UI, not a stub.
            js = [ref for ref in _assets(httpx.get(url + "/docs").text) if ref.endswith(".js")]
            assert len(httpx.get(urljoin(url, js[0])).content) > 500_000
    finally:
        svc.close()


def test_error_messages_for_remote_clients_hide_paths_and_credentials():
    # the one scrubber behind the HTTP API's and the MCP server's error answers
    from memp.errors import public_message

    msg = public_message(
        "cannot open /srv/memp/data/memp.db (postgresql://bob:s3cret@db/memp): see /v1/procedures",
        ["/srv/memp/data/memp.db"],
    )
    assert "/srv" not in msg and "s3cret" not in msg and "bob" not in msg
    assert "the memory store" in msg and "/v1/procedures" in msg
