# Procfile: web: gunicorn -c gunicorn.conf.py app.main:app
import os

bind = "0.0.0.0:" + os.environ.get("PORT", "5000")
workers = int(os.environ.get("WEB_CONCURRENCY", 2))
worker_class = "uvicorn.workers.UvicornWorker"
timeout = 30
forwarded_allow_ips = "*"
accesslog = "-"
errorlog = "-"
capture_output = True
enable_stdio_inheritance = True
