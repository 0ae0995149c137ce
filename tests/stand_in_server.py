"""A stand-in for the Hugging Face Hub and for an upstream model zoo, served on 127.0.0.1 by the tests."""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _Handler(BaseHTTPRequestHandler):
    server: StandInServer

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _respond(self, head_only: bool) -> None:
        path = unquote(urlparse(self.path).path)
        self.server.requests.append((self.command, path))
        body = self.server.files.get(path)
        if "/resolve/" in path:  # Hub file URL: /{org}/{repo}/resolve/{revision}/{filename}
            repo, rest = path.lstrip("/").split("/resolve/", 1)
            body = self.server.files.get(f"/{repo}/{rest.split('/', 1)[1]}")
        fault = self.server.faults.get(path) or self.server.faults.get(path.split("/resolve/")[0])
        if fault == "500":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if body is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("X-Error-Message", "Entry not found")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if head_only:
            return
        if fault in ("cut", "stall"):  # half the body, then (after a stall) the connection closes
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if fault == "stall":
                time.sleep(self.server.stall_seconds)
            self.close_connection = True
            return
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._respond(head_only=True)

    def do_GET(self) -> None:
        self._respond(head_only=False)


class StandInServer(ThreadingHTTPServer):
    """Serves ``files`` (URL path -> bytes); Hub-style ``/{repo}/resolve/{rev}/{file}`` maps to ``/{repo}/{file}``.

    ``faults`` (URL path, or a Hub repository's ``/{org}/{repo}`` -> fault) injects failures into GET requests:
    ``"500"`` (server error), ``"cut"`` (half the body, then the connection closes) and ``"stall"`` (half the
    body, then nothing for ``stall_seconds``).
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, str] = {}
        self.stall_seconds = 4.0
        self.requests: list[tuple[str, str]] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> StandInServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
