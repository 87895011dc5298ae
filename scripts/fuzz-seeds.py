#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz corpora (Fuzz/Corpus/<target>/seed-*) from the Plex Web session
fixture and the request targets of the core's test tables. Run once when a target's input format changes;
`make fuzz` adds what libFuzzer finds next to them. The Envoy seeds are serialised with Envoy's own published
protos (PyPI xds-protos, the interop venv): run it with .build-interop-venv/bin/python3.
    scripts/fuzz-seeds.py
"""
import hashlib
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "Fuzz", "Corpus")
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get", ""]


def write(corpus, data):
    folder = os.path.join(CORPUS, corpus)
    os.makedirs(folder, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(folder, name), "wb") as handle:
        handle.write(data)


def session():
    with open(os.path.join(ROOT, "Tests", "Fixtures", "plex-web-session.jsonl")) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def table_targets():
    targets = set()
    for name in ["ClassifierTableTests.swift", "TokenRewriteTests.swift", "ReferenceAndPathTests.swift"]:
        with open(os.path.join(ROOT, "Tests", "LiveTVAuthzCoreTests", name)) as handle:
            for literal in re.findall(r'"(/[^"\\]{0,300})"', handle.read()):
                targets.add(literal)
    return sorted(targets)


def main():
    requests = [(r["method"], r["target"], r.get("headers", {})) for r in session()]
    requests += [(method, target, {}) for target in table_targets() for method in ("GET", "POST")]

    for method, target, headers in requests:
        flags = 0 if method != "POST" else 3
        lines = [target] + [f"{k}:{v}" for k, v in headers.items()] + [""]
        body = b"uri=%2Flivetv%2Fsessions%2Fabc" if method == "POST" else b""
        write("target", bytes([flags, METHODS.index(method)]) + "\n".join(lines).encode() + b"\n" + body)

        head = [f"GET /v1/nginx HTTP/1.1", "Host: authz", f"X-Original-Method: {method}",
                f"X-Original-URI: {target}", "X-Forwarded-For: 203.0.113.9"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        write("http-head", ("\r\n".join(head) + "\r\n\r\n").encode())

    # A few framings the codec must handle: pipelining, chunked and sized bodies, HTTP/1.0, junk.
    for raw in [
        b"GET /v1/nginx HTTP/1.1\r\nX-Original-Method: GET\r\nX-Original-URI: /livetv/dvrs?X-Plex-Token=u\r\n\r\n" * 3,
        b"POST /v1/nginx HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Original-Method: POST\r\n"
        b"X-Original-URI: /playQueues?uri=%2Flivetv%2Fsessions%2Fa\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"POST /v1/nginx HTTP/1.1\r\nContent-Length: 5\r\nX-Original-Method: GET\r\nX-Original-URI: /\r\n\r\nhello",
        b"GET /v1/nginx HTTP/1.0\r\nConnection: keep-alive\r\nX-Original-Method: GET\r\nX-Original-URI: /livetv/\r\n\r\n",
        b"GET /v1/nginx HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"\r\n\r\nGET / HTTP/1.1\r\nX-Original-URI: /\xff\xfe\r\n\r\n",
    ]:
        write("http-head", raw)

    for chain in ["203.0.113.9", "198.51.100.1, 127.0.0.1", "10.0.0.1, 203.0.113.9, 127.0.0.1", "[::1]:443",
                  "::ffff:127.0.0.1, 192.0.2.5", "unknown, , 127.0.0.1"]:
        for flags in (1, 3, 5, 0):
            lines = ["127.0.0.1" if flags & 2 else "", "192.0.2.77", f"X-Forwarded-For:{chain}",
                     "CF-Connecting-IP:203.0.113.50"]
            write("forwarded-identity", bytes([flags]) + "\n".join(lines).encode())

    try:
        from envoy.service.auth.v3 import external_auth_pb2
    except ImportError:
        print("Envoy protos not importable: envoy-check seeds skipped (use .build-interop-venv/bin/python3)")
        return
    for method, target, headers in requests:
        check = external_auth_pb2.CheckRequest()
        http = check.attributes.request.http
        http.method, http.path, http.host = method, target, "plex.example.com"
        for key, value in headers.items():
            http.headers[key.lower()] = value
        if method == "POST":
            http.raw_body = b"uri=%2Flivetv%2Fsessions%2Fabc"
            http.headers["content-type"] = "application/x-www-form-urlencoded"
            http.size = len(http.raw_body)
        check.attributes.source.address.socket_address.address = "203.0.113.9"
        write("envoy-check", check.SerializeToString())
        check.attributes.request.http.header_map.headers.add(key="x-plex-token", raw_value=b"user0000")
        write("envoy-check", check.SerializeToString())


if __name__ == "__main__":
    sys.exit(main())
