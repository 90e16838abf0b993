"""The page's modules are all preloaded: index.html names every module main.js imports (directly
or through another) with <link rel="modulepreload">, so that the browser asks for them all at
once instead of finding them level by level as each module's imports are read. Plain HTTP, no
browser: a module added to the page without its preload link fails here.
"""

import html.parser
import re

import pytest

from conftest import http_connection

pytestmark = pytest.mark.shared_server

# `import ... from './x.js'`, `import './x.js'` and `import('./x.js')`, over several lines too.
IMPORT = re.compile(r"""\b(?:from|import)\s*\(?\s*['"](\./[^'"]+)['"]""")


class Links(html.parser.HTMLParser):
    """The page's module scripts and modulepreload links, in order."""

    def __init__(self):
        super().__init__()
        self.scripts, self.preloads = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("type") == "module":
            self.scripts.append(attrs["src"])
        elif tag == "link" and attrs.get("rel") == "modulepreload":
            self.preloads.append(attrs["href"])


def get(server, path):
    connection = http_connection(server.http_port)
    connection.request("GET", path)
    reply = connection.getresponse()
    return reply.status, reply.headers, reply.read().decode()


def test_every_module_the_page_imports_is_preloaded_and_nothing_else(server):
    status, headers, page = get(server, "/")
    assert status == 200
    links = Links()
    links.feed(page)
    assert links.scripts == ["/static/main.js"]
    # Same-origin modules, which the page's policy (default-src 'self') lets it preload.
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "script-src" not in headers["Content-Security-Policy"]

    imported, waiting = [], list(links.scripts)
    while waiting:  # every module reachable from main.js, as the server serves them
        path = waiting.pop(0)
        if path in imported:
            continue
        status, headers, source = get(server, path)
        assert status == 200 and "javascript" in headers["Content-Type"], path
        imported.append(path)
        waiting += ["/static/" + name.removeprefix("./") for name in IMPORT.findall(source)]
    assert len(imported) > 20  # the pattern above still finds the page's imports

    assert len(links.preloads) == len(set(links.preloads)), "a module is preloaded twice"
    assert sorted(links.preloads) == sorted(imported[1:])  # all but main.js, which the page loads
