"""A local stand-in for the Hugging Face Hub's HTTP API, for tests (no network).

It implements just the endpoints huggingface_hub calls for what finetune/registry.py does: whoami,
create repo, validate-yaml, preupload (every file "regular", so no LFS/Xet), commit (NDJSON),
list models (filter by tag, search), model info, file tree, and file resolve (HEAD and GET). Repos live
in memory; every request's path is recorded so tests can see what was called and that no
token ever appears anywhere but the Authorization header.
"""

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

import yaml


def front_matter(text: str) -> dict:
    if not text.startswith("---"):
        return {}
    return yaml.safe_load(text.split("---", 2)[1]) or {}


class FakeHub:
    def __init__(self, users: dict[str, str]):
        self.users = users  # token -> user name
        self.repos: dict[str, dict[str, bytes]] = {}  # repo id -> {path: bytes}
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, headers)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def sha(self, repo: str) -> str:
        files = self.repos[repo]
        return hashlib.sha1(
            json.dumps(sorted((p, hashlib.sha1(b).hexdigest()) for p, b in files.items())).encode()
        ).hexdigest()

    def info(self, repo: str) -> dict:
        card = front_matter(self.repos[repo].get("README.md", b"").decode())
        tags = list(card.get("tags") or [])
        if card.get("library_name"):
            tags.append(card["library_name"])
        return {
            "id": repo,
            "modelId": repo,
            "sha": self.sha(repo),
            "private": False,
            "tags": tags,
            "library_name": card.get("library_name"),
            "cardData": card or None,
            "siblings": [{"rfilename": path} for path in sorted(self.repos[repo])],
        }

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _user(self):
                auth = self.headers.get("Authorization", "")
                return hub.users.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None

            def _send(self, status, body=b"", headers=None, head=False):
                if not isinstance(body, bytes):
                    body = json.dumps(body).encode()
                    headers = {"Content-Type": "application/json", **(headers or {})}
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _error(self, status, message):
                self._send(status, {"error": message}, {"X-Error-Message": message})

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def _route(self, method):
                url = urlparse(self.path)
                hub.requests.append((method, url.path, dict(self.headers)))
                parts = [unquote(p) for p in url.path.strip("/").split("/")]
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                head = method == "HEAD"
                if parts[:2] == ["api", "whoami-v2"]:
                    user = self._user()
                    return (
                        self._send(200, {"name": user, "type": "user"}) if user else self._error(401, "Invalid token")
                    )
                if parts == ["api", "validate-yaml"]:
                    self._body()
                    return self._send(200, {"errors": [], "warnings": []})
                if parts == ["api", "repos", "create"]:
                    payload = json.loads(self._body())
                    user = self._user()
                    if user is None:
                        return self._error(401, "Invalid token")
                    owner = payload.get("organization") or user
                    repo = f"{owner}/{payload['name']}"
                    if repo in hub.repos:
                        return self._error(409, "You already created this model repo")
                    if owner != user:
                        return self._error(403, "You don't have the rights to create a model under this namespace")
                    hub.repos[repo] = {}
                    return self._send(200, {"url": f"{hub.url}/{repo}"})
                if parts == ["api", "models"] and method == "GET":
                    found = [
                        hub.info(r)
                        for r in sorted(hub.repos)
                        if query.get("filter") in hub.info(r)["tags"] and query.get("search", "").lower() in r.lower()
                    ]
                    return self._send(200, found[: int(query.get("limit", 1000))])
                if parts[:2] == ["api", "models"] and len(parts) >= 4:
                    repo = "/".join(parts[2:4])
                    if repo not in hub.repos:
                        return self._send(
                            404,
                            {"error": "Repository not found"},
                            {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
                        )
                    rest = parts[4:]
                    if rest[:1] == ["preupload"]:
                        files = json.loads(self._body())["files"]
                        return self._send(
                            200,
                            {
                                "files": [
                                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
                                ]
                            },
                        )
                    if rest[:1] == ["commit"]:
                        if self._user() != repo.split("/")[0]:
                            return self._error(403, "not allowed")
                        for line in self._body().splitlines():
                            item = json.loads(line)
                            if item["key"] == "file":
                                hub.repos[repo][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                        return self._send(
                            200,
                            {
                                "commitUrl": f"{hub.url}/{repo}/commit/{hub.sha(repo)}",
                                "commitOid": hub.sha(repo),
                                "pullRequestUrl": None,
                            },
                        )
                    if rest[:1] == ["tree"]:
                        return self._send(
                            200,
                            [
                                {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                                for path, data in sorted(hub.repos[repo].items())
                            ],
                        )
                    if rest == [] or rest[:1] == ["revision"]:
                        return self._send(200, hub.info(repo))
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo, path = "/".join(parts[:2]), "/".join(parts[4:])
                    data = hub.repos.get(repo, {}).get(path)
                    if data is None:
                        return self._send(
                            404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"}, head=head
                        )
                    etag = f'"{hashlib.sha1(data).hexdigest()}"'
                    return self._send(
                        200,
                        data,
                        {"X-Repo-Commit": hub.sha(repo), "ETag": etag, "Content-Type": "application/octet-stream"},
                        head=head,
                    )
                return self._error(404, f"fixture has no route for {method} {url.path}")

            def do_GET(self):
                self._route("GET")

            def do_HEAD(self):
                self._route("HEAD")

            def do_POST(self):
                self._route("POST")

        return Handler
