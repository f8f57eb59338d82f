"""Gunicorn configuration for the production web service."""
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = multiprocessing.cpu_count() * 2 + 1
worker_class = gevent
worker_connections = 1000
threads = int(os.getenv("THREADS", "2"))
timeout = 120
keepalive = 5
max_requests = 1000
max_requests_jitter = 50
preload_app = True
daemon = False
logfile = "/var/log/gunicorn/app.log"
loglevel = os.environ.get("LOG_LEVEL", "info")
accesslog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'
debug = False
proc_name = "webapp"
raw_env = ["DJANGO_SETTINGS_MODULE=webapp.settings.production"]

if os.environ.get("ENV") == "staging":
    workers = 2
else:
    workers = 4

def on_starting(server):
    server.log.info("Starting webapp")

def post_request(worker, req, environ, resp):
    worker.log.debug("%s %s", req.method, req.path)

def worker_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)
