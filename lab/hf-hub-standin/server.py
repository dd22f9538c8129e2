#!/usr/bin/env python3
"""Hugging Face Hub STAND-IN: a test double for the Hub's download API (or a site's mirror of it).

NOT the Hugging Face Hub. It serves repositories from a directory, read-only, with just the
endpoints that `huggingface_hub.snapshot_download` / `hf download` use:

  GET  /api/models/{org}/{name}[/revision/{rev}]     repo info: id, sha, siblings (+ blobs=true)
  GET  /api/models/{org}/{name}/tree/{rev}[/{path}]  file listing (?recursive=true)
  HEAD /{org}/{name}/resolve/{rev}/{path}            X-Repo-Commit, ETag, Content-Length,
  GET  /{org}/{name}/resolve/{rev}/{path}            X-Linked-Etag/-Size for LFS files; Range

Layout: <root>/<org>/<name>/<files...>. Entries whose name starts with "." are not served.
Each repo has one fake commit: its sha is derived from the repo id and its files' git blob ids,
so it is fixed while the files are (a changed file is, like on the Hub, a new commit). The
revisions served are "main" and that sha.

Errors look like the Hub's (JSON body, X-Error-Code, X-Error-Message), so the real client
raises RepositoryNotFoundError / RevisionNotFoundError / EntryNotFoundError / GatedRepoError.

Tokens: with --token T (or --token-file F, so that T is on no command line), repos named by
--gated (all repos when no --gated is given) need `Authorization: Bearer T` to download files
(401 GatedRepo without it); repo info and listings stay public as on the Hub. A wrong token is
refused on every request (401).

Fault injection for tests: --interrupt-after N sends the full Content-Length header of a file
GET but closes the connection after N bytes of the body (a dropped download).

Stdlib only (python3 >= 3.9), so it runs in the lab's Debian 12 base image.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Files the Hub keeps in git LFS by default (.gitattributes of a new model repo), plus anything
# at or above 10 MiB (the Hub rejects larger regular git files). For those the Hub's HEAD answer
# carries X-Linked-Etag (the sha256) and X-Linked-Size, and the client names the blob by sha256.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx",
                ".gguf", ".npy", ".npz", ".pkl", ".tar", ".gz", ".zip", ".model", ".arrow",
                ".parquet", ".ot", ".tflite", ".pb", ".joblib", ".zst", ".xz", ".7z", ".bz2")
LFS_MIN_SIZE = 10 * 1024 * 1024
CHUNK = 1024 * 1024
REVISION_MAIN = "main"


class FileInfo:
    """One served file: git blob id (the Hub's ETag for regular files) and, for LFS, sha256."""

    def __init__(self, rel: str, path: Path):
        self.rel, self.path = rel, path
        self.size = path.stat().st_size
        sha1 = hashlib.sha1(b"blob %d\0" % self.size)
        sha256 = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                sha1.update(chunk)
                sha256.update(chunk)
        self.lfs = rel.lower().endswith(LFS_SUFFIXES) or self.size >= LFS_MIN_SIZE
        self.sha256 = sha256.hexdigest()
        if self.lfs:
            pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
                       f"size {self.size}\n").encode()
            self.pointer_size = len(pointer)
            self.oid = hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest()
        else:
            self.oid = sha1.hexdigest()

    @property
    def etag(self) -> str:
        """What the client names the blob by: sha256 for LFS files, the git blob id otherwise."""
        return self.sha256 if self.lfs else self.oid

    def tree_entry(self) -> dict:
        entry = {"type": "file", "oid": self.oid, "size": self.size, "path": self.rel}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": self.pointer_size}
        return entry


class Repos:
    """The repositories under root, re-read on every request (lab up may add files), with
    file hashes cached by (path, size, mtime) so large files are hashed once."""

    def __init__(self, root: Path):
        self.root = root
        self._cache: dict[tuple[str, int, int], FileInfo] = {}
        self._lock = threading.Lock()

    def files(self, repo_id: str) -> dict[str, FileInfo] | None:
        org, _, name = repo_id.partition("/")
        if not org or not name or "/" in name or org.startswith(".") or name.startswith("."):
            return None
        base = self.root / org / name
        if not base.is_dir():
            return None
        out: dict[str, FileInfo] = {}
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fname in sorted(filenames):
                if fname.startswith("."):
                    continue
                path = Path(dirpath) / fname
                rel = path.relative_to(base).as_posix()
                st = path.stat()
                key = (str(path), st.st_size, st.st_mtime_ns)
                with self._lock:
                    info = self._cache.get(key)
                if info is None:
                    info = FileInfo(rel, path)
                    with self._lock:
                        self._cache[key] = info
                out[rel] = info
        return out

    @staticmethod
    def commit(repo_id: str, files: dict[str, FileInfo]) -> str:
        h = hashlib.sha1(f"vllm-fleet hub stand-in\0{repo_id}\0".encode())
        for rel, info in sorted(files.items()):
            h.update(f"{rel}\0{info.oid}\0".encode())
        return h.hexdigest()


class HubError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Hub; every answer has a Content-Length
    server_version = "hf-hub-standin/1"
    # Set by make_server on a subclass.
    repos: Repos
    token: str | None = None
    gated: frozenset[str] | None = None  # None: every repo, when a token is configured
    interrupt_after: int | None = None
    quiet: bool = False

    # --- plumbing -----------------------------------------------------------------------------

    def log_message(self, fmt: str, *args) -> None:
        if not self.quiet:
            sys.stderr.write(f"hf-hub-standin: {self.address_string()} {fmt % args}\n")

    def _send_json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_error(self, err: HubError) -> None:
        self._send_json(err.status, {"error": err.message},
                        {"X-Error-Code": err.code, "X-Error-Message": err.message})

    def _bearer(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def _check_credentials(self) -> None:
        given = self._bearer()
        if given is not None and self.token is not None and given != self.token:
            raise HubError(401, "", "Invalid credentials in Authorization header")

    def _check_access(self, repo_id: str) -> None:
        if self.token is None or (self.gated is not None and repo_id not in self.gated):
            return
        if self._bearer() != self.token:
            raise HubError(401, "GatedRepo",
                           f"Access to model {repo_id} is restricted. You must have access to it and be "
                           "authenticated to access it. Please log in.")

    def _repo(self, repo_id: str) -> dict[str, FileInfo]:
        files = self.repos.files(repo_id)
        if files is None:
            raise HubError(404, "RepoNotFound", f"Repository not found: {repo_id} is not on this hub "
                                                "(hf-hub-standin).")
        return files

    def _commit_for(self, repo_id: str, files: dict[str, FileInfo], revision: str) -> str:
        sha = Repos.commit(repo_id, files)
        if revision not in (REVISION_MAIN, sha):
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision} (this stand-in serves "
                                                    f"'{REVISION_MAIN}' and {sha} for {repo_id}).")
        return sha

    # --- routes -------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        try:
            self._check_credentials()
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                self._api(parts[2] + "/" + parts[3], parts[4:], query)
            elif len(parts) >= 5 and parts[2] == "resolve":
                self._resolve(parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:]))
            else:
                raise HubError(404, "", f"Not found: {url.path} (hf-hub-standin serves /api/models/... "
                                        "and /{org}/{name}/resolve/{rev}/{path}).")
        except HubError as err:
            self._send_error(err)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _api(self, repo_id: str, rest: list[str], query: dict[str, list[str]]) -> None:
        files = self._repo(repo_id)
        if not rest or rest[0] == "revision":
            sha = self._commit_for(repo_id, files, rest[1] if len(rest) > 1 else REVISION_MAIN)
            blobs = query.get("blobs", ["false"])[0].lower() == "true"
            siblings = []
            for info in files.values():
                sib: dict = {"rfilename": info.rel}
                if blobs:
                    sib.update(size=info.size, blobId=info.oid)
                    if info.lfs:
                        sib["lfs"] = {"sha256": info.sha256, "size": info.size,
                                      "pointerSize": info.pointer_size}
                siblings.append(sib)
            gated = self.token is not None and (self.gated is None or repo_id in self.gated)
            self._send_json(200, {
                "_id": sha[:24], "id": repo_id, "modelId": repo_id, "author": repo_id.split("/")[0],
                "sha": sha, "private": False, "gated": "manual" if gated else False,
                "disabled": False, "tags": ["hf-hub-standin"], "siblings": siblings,
            })
        elif rest[0] == "tree" and len(rest) >= 2:
            self._commit_for(repo_id, files, rest[1])  # 404 RevisionNotFound for unknown revisions
            prefix = "/".join(rest[2:]).strip("/")
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            self._send_json(200, self._tree(files, prefix, recursive))
        else:
            raise HubError(404, "", f"Not found: /api/models/{repo_id}/{'/'.join(rest)}")

    @staticmethod
    def _tree(files: dict[str, FileInfo], prefix: str, recursive: bool) -> list[dict]:
        base = prefix + "/" if prefix else ""
        if prefix and not any(rel.startswith(base) for rel in files):
            raise HubError(404, "EntryNotFound", f"{prefix} does not exist on this revision")
        entries: dict[str, dict] = {}
        for rel, info in sorted(files.items()):
            if not rel.startswith(base):
                continue
            inner = rel[len(base):].split("/")
            # Directories are listed with a fake tree id (the client only reads path and type).
            for depth in range(1, len(inner)):
                if not recursive and depth > 1:
                    break
                d = base + "/".join(inner[:depth])
                entries.setdefault(d, {"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(),
                                       "size": 0, "path": d})
            if recursive or len(inner) == 1:
                entries[rel] = info.tree_entry()
        return list(entries.values())

    def _resolve(self, repo_id: str, revision: str, rel: str) -> None:
        files = self._repo(repo_id)
        sha = self._commit_for(repo_id, files, revision)
        self._check_access(repo_id)
        info = files.get(rel)
        if info is None:
            raise HubError(404, "EntryNotFound", f"{rel} does not exist in {repo_id} at {revision}")
        start, end = 0, info.size - 1
        status = 200
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip()) if rng else None
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), info.size - 1) if m.group(2) else info.size - 1
            else:  # suffix range: the last N bytes
                start = max(0, info.size - int(m.group(2)))
            if start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{info.size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("X-Repo-Commit", sha)
        self.send_header("ETag", f'"{info.oid}"')
        if info.lfs:
            # What the Hub puts on its redirect to the CDN; the client prefers these two.
            self.send_header("X-Linked-Etag", f'"{info.sha256}"')
            self.send_header("X-Linked-Size", str(info.size))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{info.size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        budget = self.interrupt_after
        with info.path.open("rb") as fh:
            fh.seek(start)
            left = length
            while left > 0:
                chunk = fh.read(min(CHUNK, left))
                if not chunk:
                    break
                if budget is not None:
                    if budget <= 0:
                        break
                    chunk = chunk[:budget]
                    budget -= len(chunk)
                self.wfile.write(chunk)
                left -= len(chunk)
        if left > 0:  # interrupted (fault injection) or the file shrank: drop the connection
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)


def make_server(root: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 0, *,
                token: str | None = None, gated: list[str] | None = None,
                interrupt_after: int | None = None, quiet: bool = False) -> ThreadingHTTPServer:
    """A ready (not yet serving) server; port 0 picks a free port (server.server_address[1])."""
    attrs = {"repos": Repos(Path(root)), "token": token or None,
             "gated": frozenset(gated) if gated else None,
             "interrupt_after": interrupt_after, "quiet": quiet}
    handler = type("BoundHandler", (Handler,), attrs)
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Hugging Face Hub STAND-IN (test double): serves "
                                            "<root>/<org>/<name>/ repos over the Hub's download API.")
    p.add_argument("--root", required=True, help="directory holding <org>/<name>/ repositories")
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--token", default=os.environ.get("HF_HUB_STANDIN_TOKEN"),
                   help="token that grants access to gated repos (default $HF_HUB_STANDIN_TOKEN)")
    p.add_argument("--token-file", metavar="PATH",
                   help="read the token from this file instead (it stays out of the process list)")
    p.add_argument("--gated", action="append", metavar="ORG/NAME",
                   help="a repo that needs the token (repeatable; default with --token: all repos)")
    p.add_argument("--interrupt-after", type=int, metavar="BYTES",
                   help="fault injection: close file downloads after BYTES bytes of the body")
    p.add_argument("--quiet", action="store_true", help="no access log")
    args = p.parse_args(argv)
    if not Path(args.root).is_dir():
        p.error(f"--root {args.root} is not a directory; create it (with <org>/<name>/ repos) first.")
    if args.token_file:
        try:
            args.token = Path(args.token_file).read_text().strip()
        except OSError as exc:
            p.error(f"--token-file {args.token_file}: {exc.strerror or exc}")
        if not args.token:
            p.error(f"--token-file {args.token_file} is empty; write the token into it, or leave the option out.")
    server = make_server(args.root, args.bind, args.port, token=args.token, gated=args.gated,
                         interrupt_after=args.interrupt_after, quiet=args.quiet)
    gated = ("no token: every repo is public" if not args.token else
             f"token required for {', '.join(args.gated) if args.gated else 'every repo'}")
    print(f"hf-hub-standin (a test double, not the Hugging Face Hub) serving {args.root} on "
          f"http://{args.bind}:{server.server_address[1]} ({gated})", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
