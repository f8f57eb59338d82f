"""The users API of examples/dbapi as a WSGI app, for the Gunicorn + gevent
peer of the api scenario (bench/api/api.sh).

GET /users/{id} answers the row as JSON (id, name, email, created_at) with
a trailing newline, 404 when there is none, as examples/dbapi/users does.
PostgreSQL through psycopg2 made cooperative by psycogreen (Debian's
python3-psycopg2 and python3-psycogreen): the gevent worker patches the
standard library, psycogreen registers a wait callback so a query yields
to other greenlets instead of blocking the worker. Connections come from
a pool of API_POOL per worker, opened on first use, as pgxpool does.
"""

import json
import os

from gevent.queue import Queue
from psycogreen.gevent import patch_psycopg

patch_psycopg()
import psycopg2  # noqa: E402  (after the patch, as psycogreen asks)

DSN = os.environ["API_PG_DSN"]
POOL = int(os.environ.get("API_POOL", "24"))
SELECT_ONE = "SELECT id, name, email, created_at FROM users WHERE id = %s"

_idle = Queue()
_opened = 0


def _get():
    global _opened
    if _idle.empty() and _opened < POOL:
        _opened += 1
        try:
            conn = psycopg2.connect(DSN)
        except Exception:
            _opened -= 1
            raise
        conn.autocommit = True
        return conn
    return _idle.get()


def _answer(start_response, status, body):
    body = json.dumps(body, separators=(",", ":")).encode() + b"\n"
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if environ.get("REQUEST_METHOD") != "GET" or not path.startswith("/users/"):
        return _answer(start_response, "404 Not Found", {"error": "not found"})
    try:
        uid = int(path[len("/users/"):])
    except ValueError:
        return _answer(start_response, "400 Bad Request", {"error": "id must be an integer"})
    conn = _get()
    try:
        with conn.cursor() as cur:
            cur.execute(SELECT_ONE, (uid,))
            row = cur.fetchone()
    except Exception:
        conn.close()
        global _opened
        _opened -= 1
        return _answer(start_response, "503 Service Unavailable", {"error": "database unavailable"})
    _idle.put(conn)
    if row is None:
        return _answer(start_response, "404 Not Found", {"error": "no such user"})
    return _answer(start_response, "200 OK",
                   {"id": row[0], "name": row[1], "email": row[2], "created_at": row[3].isoformat()})
