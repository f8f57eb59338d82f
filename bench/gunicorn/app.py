"""Minimal WSGI app for the Gunicorn + gevent peer of bench/run.sh.

Answers exactly like asyncd (bench/asyncd-bench.yaml): GET /plaintext,
GET /json (json.dumps per request, as TechEmpower does), POST /post (reads
the whole body), GET /delay (sleeps 100 ms; gevent's worker patches
time.sleep so it yields instead of blocking the worker).
"""

import json
import time

PLAIN = b"Hello, World!"
OK = b"ok"


def _answer(start_response, body, ctype, status="200 OK"):
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "GET")
    if path == "/plaintext" and method == "GET":
        return _answer(start_response, PLAIN, "text/plain")
    if path == "/json" and method == "GET":
        body = json.dumps({"message": "Hello, World!"}, separators=(",", ":")).encode()
        return _answer(start_response, body, "application/json")
    if path == "/post" and method == "POST":
        environ["wsgi.input"].read()
        return _answer(start_response, OK, "text/plain")
    if path == "/delay" and method == "GET":
        time.sleep(0.1)
        return _answer(start_response, OK, "text/plain")
    return _answer(start_response, b"not found", "text/plain", "404 Not Found")
