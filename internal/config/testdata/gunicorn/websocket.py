# Flask-SocketIO behind nginx
worker_class = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
workers = 1
bind = "unix:/run/chat/chat.sock"
umask = 0o007
log_file = "-"
log_level = "debug"
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
reload = True
reload_extra_files = ["templates/index.html"]
