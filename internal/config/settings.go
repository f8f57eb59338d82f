package config

import (
	"os"
	"time"
)

// Gunicorn's default access log format.
const gunicornAccessLogFormat = `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`

const (
	reasonNoPython = "asyncd runs no Python"
	reasonNoTLS    = "asyncd serves plain HTTP/1.1: terminate TLS in front of it " +
		"(nginx, HAProxy, a load balancer) and pass the scheme on with " +
		"secure_scheme_headers or proxy_protocol"
	reasonSyslog = "asyncd does not log to syslog: log to stderr (errorlog: \"-\") " +
		"and let journald or the container runtime collect it"
	reasonStrict = "asyncd's HTTP/1.1 parser is strict (RFC 9112) and not configurable: " +
		"fix the client, or normalise requests in the proxy in front"
	reasonNoPyLog   = "Python logging configuration cannot be read: use loglevel, errorlog and error_log_format"
	reasonNoReload  = "asyncd is a compiled binary with no source to watch: rebuild it and restart"
	reasonNoPaste   = "there is no PasteDeploy: name handlers in routes"
	reasonNoProcTit = "asyncd does not rename its processes"
)

// settings is THE table. Order within a group is --help and docs order.
var settings = []Setting{
	// Actions first: --help lists them before the groups, as argparse does.
	{Key: "help", Short: "h", Flag: "help", Type: TypeBool, Support: Action, Group: GroupConfigFile,
		Help: "Show this help message and exit."},
	{Key: "version", Short: "v", Flag: "version", Type: TypeBool, Support: Action, Group: GroupConfigFile,
		Help: "Show the version and exit."},

	// Config File
	{Key: "config", Field: "ConfigFile", Type: TypeString, Default: "", Short: "c", Flag: "config",
		Env: env("config"), Group: GroupConfigFile, Meta: "FILE", NoFile: true,
		Help: "The config file: YAML, or a Gunicorn .py file (literal assignments only).",
		Doc: "A file whose name ends in `.py` is read as a Gunicorn config (see " +
			"[Gunicorn .py files](#gunicorn-py-files)); any other file as YAML (JSON is YAML too). " +
			"Gunicorn's `file:PATH` form is accepted; `python:MODULE` is not.",
		Gunicorn: "Gunicorn reads ./gunicorn.conf.py when no -c is given; asyncd reads no file unless one is named."},
	{Key: "wsgi_app", Type: TypeAny, Group: GroupConfigFile, Support: Rejected,
		Reason: reasonNoPython + ": name Go handlers in routes instead"},

	// Server Socket
	{Key: "bind", Field: "Bind", Type: TypeStringList, Default: []string{"127.0.0.1:8000"},
		Short: "b", Flag: "bind", Env: env("bind"), Group: GroupServerSocket, Meta: "ADDRESS", Repeatable: true,
		Help: "The socket to bind: HOST:PORT, [IPv6]:PORT, :PORT, unix:PATH or fd://FD; repeat to bind several.",
		Doc: "`:PORT` listens on every interface; port 0 picks a free port. `unix:@NAME` is a Linux " +
			"abstract socket. `fd://FD` serves a socket inherited already listening (systemd socket " +
			"activation passes FD 3 and up). In ASYNCD_BIND, separate addresses with commas.",
		Gunicorn: "Same forms, except that Gunicorn also takes a bare HOST (port 8000); asyncd wants the " +
			"port spelled out. As in Gunicorn, when $PORT is set the default is 0.0.0.0:$PORT.",
		check: checkBinds,
		pyHint: `write the address itself, e.g. bind = "0.0.0.0:8000", or pass it with ASYNCD_BIND or -b ` +
			`(with no bind, $PORT means 0.0.0.0:$PORT, as in Gunicorn)`},
	{Key: "backlog", Field: "Backlog", Type: TypeInt, Default: 2048, Flag: "backlog", Env: env("backlog"),
		Group: GroupServerSocket, Meta: "INT",
		Help:  "The maximum number of pending connections.",
		Doc:   "Passed to listen(2); Linux caps it at net.core.somaxconn.",
		check: intMin(1)},
	{Key: "socket_mode", Field: "SocketMode", Type: TypeFileMode, Default: os.FileMode(0o660),
		Flag: "socket-mode", Env: env("socket_mode"), Group: GroupServerSocket, Meta: "MODE",
		Help: "Permission bits of the unix: sockets asyncd creates (octal).",
		Doc: "Write it as an octal string (`\"0660\"`) or an integer (YAML reads an unquoted 0660 as " +
			"octal already). Strings are always octal, as for chmod.",
		Gunicorn: "asyncd only; Gunicorn derives the socket's mode from umask.",
		check:    modeMax(0o777)},
	{Key: "socket_owner", Field: "SocketOwner", Type: TypeString, Default: "", Flag: "socket-owner",
		Env: env("socket_owner"), Group: GroupServerSocket, Meta: "USER",
		Help: "Owner of the unix: sockets asyncd creates (name or uid); empty = the serving user, if user or group is set, else unchanged.",
		Doc: "Changing the owner needs root. Sockets from systemd (socket activation) are left as the " +
			"socket unit made them (`SocketUser=`).",
		Gunicorn: "asyncd only; Gunicorn gives the socket to the worker user and group.",
		check:    checkAccount},
	{Key: "socket_group", Field: "SocketGroup", Type: TypeString, Default: "", Flag: "socket-group",
		Env: env("socket_group"), Group: GroupServerSocket, Meta: "GROUP",
		Help: "Group of the unix: sockets asyncd creates (name or gid): with socket_mode 0660 its members may connect; empty = the serving group, if user or group is set, else unchanged.",
		Doc: "Set it to the proxy's group (`www-data` for Debian's nginx). asyncd need not run as root " +
			"for this: a process may give its own files to any group it is a member of (systemd: " +
			"`SupplementaryGroups=www-data`). Sockets from systemd keep the socket unit's `SocketGroup=`.",
		Gunicorn: "asyncd only; Gunicorn gives the socket to the worker user and group.",
		check:    checkAccount},

	// Worker Processes
	{Key: "workers", Field: "Workers", Type: TypeInt, Default: 0, Short: "w", Flag: "workers",
		Env: env("workers"), Group: GroupWorkerProcesses, Meta: "INT",
		Help: "The number of event loops; 0 = one per CPU.",
		Doc: "asyncd serves from one process running one event loop per worker, so more loops " +
			"than CPUs only adds contention: Gunicorn's advice of 2-4 x cores is for processes that " +
			"block, and a value above the CPU count gets a warning. CPUs are counted as the Go " +
			"runtime sees them (GOMAXPROCS), which follows a container's CPU quota.",
		Gunicorn: "Gunicorn: worker processes, default 1; asyncd: event loops in one serving process, " +
			"default one per CPU. As in Gunicorn, $WEB_CONCURRENCY, when set, is the default.",
		check:  intMin(0),
		pyHint: "set workers = 0 for one event loop per CPU (with no workers, $WEB_CONCURRENCY is the default, as in Gunicorn)"},
	{Key: "worker_class", Field: "WorkerClass", Type: TypeEnum, Default: WorkerSync,
		Choices: []string{"sync", "async", "gthread"},
		Aliases: []string{"gevent", "eventlet", "tornado", "uvicorn", "uvicorn.workers.UvicornWorker",
			"uvicorn.workers.UvicornH11Worker", "uvicorn_worker.UvicornWorker",
			"gunicorn.workers.sync.SyncWorker", "gunicorn.workers.gthread.ThreadWorker",
			"gunicorn.workers.ggevent.GeventWorker", "gunicorn.workers.geventlet.EventletWorker",
			"gunicorn.workers.gtornado.TornadoWorker", "egg:gunicorn#sync", "egg:gunicorn#gthread",
			"egg:gunicorn#gevent", "egg:gunicorn#eventlet", "egg:gunicorn#tornado",
			"geventwebsocket.gunicorn.workers.GeventWebSocketWorker"},
		Short: "k", Flag: "worker-class", Env: env("worker_class"), Group: GroupWorkerProcesses, Meta: "STRING",
		Help: "How handlers run: sync, async or gthread (Gunicorn's gevent, eventlet, tornado, uvicorn mean async).",
		Doc: "`sync` runs each handler on its event loop: the fastest, but a handler must not block " +
			"(see block_warning and routes' `blocking`). `async` runs each request's handler on its own " +
			"goroutine, up to worker_connections per loop. `gthread` runs handlers on a pool of " +
			"`threads` goroutines per loop. As in Gunicorn, `sync` with threads > 1 runs as `gthread`. " +
			"The name is kept as given (so --print-config shows it) and mapped when used.",
		Gunicorn: "Gunicorn's class names are accepted; custom Python worker classes are not.",
		check:    checkWorkerClass},
	{Key: "threads", Field: "Threads", Type: TypeInt, Default: 1, Flag: "threads", Env: env("threads"),
		Group: GroupWorkerProcesses, Meta: "INT",
		Help:  "Handler goroutines per event loop for gthread (sync with threads > 1 runs as gthread).",
		check: intMin(1)},
	{Key: "worker_connections", Field: "WorkerConnections", Type: TypeInt, Default: 1000,
		Flag: "worker-connections", Env: env("worker_connections"), Group: GroupWorkerProcesses, Meta: "INT",
		Help: "The maximum number of requests in flight off the loop (async, gthread, blocking routes), per event loop.",
		Doc: "A loop at the limit takes no new request from its connections until one in flight finishes " +
			"(back-pressure: requests wait in the clients' sockets, not in server memory). Idle and inline " +
			"(sync) connections do not count: they cost no goroutine, so connections are bounded by the " +
			"open-file limit (RLIMIT_NOFILE) instead; at that limit accept pauses and the loop keeps serving.",
		Gunicorn: "Gunicorn: simultaneous clients per worker process, async classes only; asyncd: requests in flight per event loop, since an idle connection costs almost nothing here.",
		check:    intMin(1)},
	{Key: "backend", Field: "Backend", Type: TypeEnum, Default: BackendAuto,
		Choices: []string{"auto", "epoll", "io_uring"},
		Flag:    "backend", Env: env("backend"), Group: GroupWorkerProcesses, Meta: "NAME",
		Help: "Event-loop backend: auto, epoll or io_uring.",
		Doc: "`auto` uses io_uring, the backend the published run measured to cost less CPU per request " +
			"than epoll (0.76x on plaintext, 0.83x pipelined, 0.80x with a new connection per request, " +
			"0.88x at 1,000 connections; docs/benchmarks.md, \"io_uring against epoll\"), and falls back " +
			"to epoll, logging the reason, where the kernel does not allow io_uring. `io_uring` is refused, with the reason, where the kernel does not allow it " +
			"(container runtimes often forbid it, and kernel.io_uring_disabled can turn it off). " +
			"A custom build may add a backend of its own and name it here (docs/design.md, \"Backends by name\").",
		Gunicorn: "asyncd only.",
		check:    checkBackend},
	{Key: "timeout", Field: "Timeout", Type: TypeDuration, Default: 30 * time.Second, Short: "t",
		Flag: "timeout", Env: env("timeout"), Group: GroupWorkerProcesses, Meta: "DURATION",
		Help: "Heartbeat timeout: a serving process whose event loops stay silent this long is killed and replaced; 0 = off.",
		Doc: "This is Gunicorn's meaning: it catches a hung process, it is not a per-request limit " +
			"(see request_timeout).",
		Gunicorn: "Same meaning and default; also takes Go durations.",
		check:    durMin(0)},
	{Key: "graceful_timeout", Field: "GracefulTimeout", Type: TypeDuration, Default: 30 * time.Second,
		Flag: "graceful-timeout", Env: env("graceful_timeout"), Group: GroupWorkerProcesses, Meta: "DURATION",
		Help:  "On restart or shutdown, how long in-flight requests get to finish before connections are closed.",
		check: durMin(0)},
	{Key: "keepalive", Field: "Keepalive", Type: TypeDuration, Default: 90 * time.Second,
		Flag: "keep-alive", Env: env("keepalive"), Group: GroupWorkerProcesses, Meta: "DURATION",
		Help: "How long an idle keep-alive connection stays open; 0 = close after each response.",
		Doc: "The default outlives the idle timeouts of the proxies usually in front (nginx upstream " +
			"keepalive_timeout and AWS ALB: 60s). The proxy must close an idle connection before the " +
			"server does; otherwise it can send a request just as the server closes the connection, " +
			"and answer 502. Facing clients directly, a few seconds is enough.",
		Gunicorn: "Gunicorn's default is 2 seconds, which causes exactly those 502s behind a load " +
			"balancer; values under 5s get a warning.",
		check: durMin(0)},
	{Key: "request_timeout", Field: "RequestTimeout", Type: TypeDuration, Default: 60 * time.Second,
		Flag: "request-timeout", Env: env("request_timeout"), Group: GroupWorkerProcesses, Meta: "DURATION",
		Help: "The longest a handler off the loop may take to start its response, from the end of the request head; 0 = no limit.",
		Doc: "On expiry the client gets 503 and the handler's context is cancelled with " +
			"context.DeadlineExceeded; until then the context's Deadline is this one (net/http's " +
			"r.Context() too). Once the response has started (its head is sent: a Flush, or a body " +
			"past 32 KiB) it no longer applies: a download, a proxied response or an SSE stream runs " +
			"as long as its client keeps reading, and send_timeout bounds each stall. Handlers on the " +
			"loop (sync) cannot be interrupted; timeout and block_warning watch them.",
		Gunicorn: "asyncd only.",
		check:    durMin(0)},
	{Key: "shutdown_delay", Field: "ShutdownDelay", Type: TypeDuration, Default: time.Duration(0),
		Flag: "shutdown-delay", Env: env("shutdown_delay"), Group: GroupWorkerProcesses, Meta: "DURATION",
		Help: "On SIGTERM, keep serving this long before the graceful shutdown starts.",
		Doc: "Load balancers and Kubernetes keep sending new connections for a few seconds after an " +
			"instance is told to stop; a delay of 5-15s lets them deregister it first.",
		Gunicorn: "asyncd only.",
		check:    durMin(0)},
	{Key: "max_requests", Field: "MaxRequests", Type: TypeInt, Default: 0, Flag: "max-requests",
		Env: env("max_requests"), Group: GroupWorkerProcesses, Meta: "INT",
		Help:     "Gracefully replace the serving process after it has handled this many requests; 0 = never.",
		Gunicorn: "Gunicorn restarts one worker process; asyncd replaces the serving process.",
		check:    intMin(0)},
	{Key: "max_requests_jitter", Field: "MaxRequestsJitter", Type: TypeInt, Default: 0,
		Flag: "max-requests-jitter", Env: env("max_requests_jitter"), Group: GroupWorkerProcesses, Meta: "INT",
		Help:  "Add a random 0..N to max_requests so that restarts do not line up.",
		check: intMin(0)},
	{Key: "max_worker_memory", Field: "MaxWorkerMemory", Type: TypeSize, Default: int64(0),
		Flag: "max-worker-memory", Env: env("max_worker_memory"), Group: GroupWorkerProcesses, Meta: "SIZE",
		Help:     "Gracefully replace the serving process when its resident memory exceeds this; 0 = off.",
		Gunicorn: "asyncd only.",
		check:    sizeMin(0)},

	// Security
	{Key: "limit_request_line", Field: "LimitRequestLine", Type: TypeInt, Default: 4094,
		Flag: "limit-request-line", Env: env("limit_request_line"), Group: GroupSecurity, Meta: "INT",
		Help:     "The maximum size of the request line in bytes, 0..8190 (0 = 8190).",
		Gunicorn: "Same range and default.",
		check:    intRange(0, MaxRequestLine)},
	{Key: "limit_request_fields", Field: "LimitRequestFields", Type: TypeInt, Default: 100,
		Flag: "limit-request-fields", Env: env("limit_request_fields"), Group: GroupSecurity, Meta: "INT",
		Help:     "The maximum number of header fields in a request, 0..32768 (0 = 32768).",
		Gunicorn: "Same range and default.",
		check:    intRange(0, MaxHeaderCount)},
	{Key: "limit_request_field_size", Field: "LimitRequestFieldSize", Type: TypeInt, Default: 8190,
		Flag: "limit-request-field_size", Env: env("limit_request_field_size"), Group: GroupSecurity, Meta: "INT",
		Help: "The maximum size of one header field in bytes; 0 = 1 MiB.",
		Doc: "The flag keeps Gunicorn's spelling; --limit-request-field-size works too (every flag " +
			"accepts _ for -).",
		Gunicorn: "Gunicorn treats 0 as unlimited; asyncd keeps a 1 MiB cap so that one connection " +
			"cannot make it buffer without bound.",
		check: intRange(0, MaxFieldSize)},
	{Key: "limit_request_body", Field: "LimitRequestBody", Type: TypeSize, Default: int64(100 << 20),
		Flag: "limit-request-body", Env: env("limit_request_body"), Group: GroupSecurity, Meta: "SIZE",
		Help:     "The maximum request body size; 0 = no limit.",
		Gunicorn: "asyncd only.",
		check:    sizeMin(0)},
	{Key: "limit_chunk_extension", Field: "LimitChunkExtension", Type: TypeInt, Default: 4096,
		Flag: "limit-chunk-extension", Env: env("limit_chunk_extension"), Group: GroupSecurity, Meta: "INT",
		Help: "The maximum size in bytes of the chunk extensions on one chunk-size line of a chunked " +
			"request body, 1..1048576; over it the request is answered 400.",
		Doc: "Chunk extensions (`5;name=value`) carry nothing asyncd uses: they are validated and " +
			"skipped, never buffered, so the limit only bounds how long a client may keep a chunk " +
			"line going.",
		Gunicorn: "asyncd only (Gunicorn has no such limit).",
		check:    intRange(1, 1<<20)},
	{Key: "header_timeout", Field: "HeaderTimeout", Type: TypeDuration, Default: 10 * time.Second,
		Flag: "header-timeout", Env: env("header_timeout"), Group: GroupSecurity, Meta: "DURATION",
		Help:     "The time a client gets to send a whole request head (slow-loris protection).",
		Gunicorn: "asyncd only.",
		check:    durPositive},
	{Key: "body_timeout", Field: "BodyTimeout", Type: TypeDuration, Default: 30 * time.Second,
		Flag: "body-timeout", Env: env("body_timeout"), Group: GroupSecurity, Meta: "DURATION",
		Help:     "The longest wait between two reads of a request body.",
		Gunicorn: "asyncd only.",
		check:    durPositive},
	{Key: "send_timeout", Field: "SendTimeout", Type: TypeDuration, Default: 60 * time.Second,
		Flag: "send-timeout", Env: env("send_timeout"), Group: GroupSecurity, Meta: "DURATION",
		Help: "The longest a client may leave response bytes unread: output waiting for it that makes no progress this long closes the connection.",
		Doc: "nginx's send_timeout, and its default: it bounds each stall between two writes that " +
			"make progress, not the whole response, so a slow but steady reader gets a response of " +
			"any size. A client that stops reading is closed and its response logged as cut; a " +
			"handler still streaming to it gets an error from Write or Flush and its context is " +
			"cancelled (context.Canceled).",
		Gunicorn: "asyncd only: Gunicorn has no such setting (a sync worker stuck writing to a client is killed by timeout).",
		check:    durPositive},

	// Debugging
	{Key: "check_config", Flag: "check-config", Type: TypeBool, Support: Action, Group: GroupDebugging,
		Help: "Check the configuration and exit: status 0 if it is valid, 1 if not."},
	{Key: "print_config", Flag: "print-config", Type: TypeBool, Support: Action, Group: GroupDebugging,
		Help: "Print the effective configuration as YAML (loadable with -c; secrets masked) and exit."},
	{Key: "block_warning", Field: "BlockWarning", Type: TypeDuration, Default: 100 * time.Millisecond,
		Flag: "block-warning", Env: env("block_warning"), Group: GroupDebugging, Meta: "DURATION",
		Help: "Log a warning when a sync handler holds its event loop longer than this; 0 = off.",
		Doc: "The watchdog looks every 100 ms. A route is logged the first time it blocks, then at most " +
			"once a minute while it keeps blocking, each line counting the reports left out since " +
			"(`suppressed`), so a handler that blocks on every request does not flood the log.",
		Gunicorn: "asyncd only.",
		check:    durMin(0)},
	{Key: "reload", Flag: "reload", Type: TypeBool, Group: GroupDebugging, Support: Ignored, Reason: reasonNoReload},
	{Key: "reload_engine", Flag: "reload-engine", Type: TypeAny, Group: GroupDebugging, Support: Ignored, Reason: reasonNoReload},
	{Key: "reload_extra_files", Flag: "reload-extra-file", Type: TypeAny, Repeatable: true, Group: GroupDebugging,
		Support: Ignored, Reason: reasonNoReload},
	{Key: "spew", Flag: "spew", Type: TypeBool, Group: GroupDebugging, Support: Ignored,
		Reason: "there is no Python interpreter to trace"},

	// Server Mechanics
	{Key: "reuse_port", Field: "ReusePort", Type: TypeBool, Default: true, Flag: "reuse-port",
		Env: env("reuse_port"), Group: GroupServerMechanics,
		Help: "Open one SO_REUSEPORT listener per event loop (--reuse-port=false shares one).",
		Doc: "With it the kernel spreads new connections evenly across the loops' listeners and no " +
			"loop wakes for a connection another takes. Set it false where SO_REUSEPORT is refused " +
			"or unwanted; the loops then share one listener.",
		Gunicorn: "Gunicorn defaults to False because its workers share the arbiter's one socket; " +
			"asyncd's loops each accept for themselves, which SO_REUSEPORT makes even.",
	},
	{Key: "body_buffer_size", Field: "BodyBufferSize", Type: TypeSize, Default: int64(1 << 20),
		Flag: "body-buffer-size", Env: env("body_buffer_size"), Group: GroupServerMechanics, Meta: "SIZE",
		Help:     "Request bodies up to this size are buffered whole for the handler; larger ones are streamed to it off the loop.",
		Gunicorn: "asyncd only.",
		check:    sizeMin(1)},
	{Key: "output_buffer_limit", Field: "OutputBufferLimit", Type: TypeSize, Default: int64(256 << 10),
		Flag: "output-buffer-limit", Env: env("output_buffer_limit"), Group: GroupServerMechanics, Meta: "SIZE",
		Help: "Per-connection output past which the engine takes no further requests from that connection until the client reads.",
		Doc: "Bounds the memory a client that pipelines requests but does not read responses can " +
			"make asyncd hold.",
		Gunicorn: "asyncd only.",
		check:    sizeMin(1)},
	{Key: "server_header", Field: "ServerHeader", Type: TypeString, Default: "asyncd",
		Flag: "server-header", Env: env("server_header"), Group: GroupServerMechanics, Meta: "STRING",
		Help:     "The Server response header's value; empty = no Server header.",
		Gunicorn: "asyncd only (Gunicorn always sends Server: gunicorn).",
		check:    checkFieldValue},
	{Key: "forwarded_allow_ips", Field: "ForwardedAllowIPs", Type: TypeStringList,
		Default: []string{"127.0.0.1", "::1"}, Flag: "forwarded-allow-ips", Env: env("forwarded_allow_ips"),
		Group: GroupServerMechanics, Meta: "STRING", SplitCommas: true, Repeatable: true,
		Help: "Proxies (IPs, CIDRs, or * for any) whose X-Forwarded-For, Forwarded and secure_scheme_headers are believed; comma-separated.",
		Doc: "Unix-socket peers are always trusted, as in Gunicorn. Repeated header lines are read as one " +
			"list; the client is the right-most X-Forwarded-For hop (or Forwarded for=) that is not in this " +
			"list, and the scheme is read at that hop ([security.md](security.md#proxies-in-front)). `*` " +
			"trusts every peer and every hop, so the client's own left-most X-Forwarded-For entry becomes " +
			"its address: asyncd warns at start. List the proxies' addresses instead.",
		Gunicorn: "Same; Gunicorn also reads $FORWARDED_ALLOW_IPS, asyncd reads ASYNCD_FORWARDED_ALLOW_IPS.",
		check:    checkAllowList},
	{Key: "secure_scheme_headers", Field: "SecureSchemeHeaders", Type: TypeStringMap,
		Default: map[string]string{"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"},
		Env:     env("secure_scheme_headers"), Group: GroupServerMechanics,
		Help: "Headers, and their values, by which a trusted proxy marks a request as HTTPS.",
		Doc: "A mapping of header name to exact value in the config file; in the environment " +
			"`ASYNCD_SECURE_SCHEME_HEADERS=\"X-FORWARDED-PROTO=https,X-FORWARDED-SSL=on\"`. Names " +
			"are matched case-insensitively (and stored upper-cased), values exactly. Only requests " +
			"from forwarded_allow_ips are believed.",
		Gunicorn: "Same default; no flag, as in Gunicorn.",
		check:    checkSchemeHeaders},
	{Key: "proxy_protocol", Field: "ProxyProtocol", Type: TypeEnum, Default: ProxyOff,
		Choices: []string{"off", "v1", "v2", "auto"}, Aliases: []string{"true", "false"},
		Flag: "proxy-protocol", Env: env("proxy_protocol"), Group: GroupServerMechanics, Meta: "MODE",
		Help: "Expect a PROXY protocol header: off, v1, v2 or auto (--proxy-protocol alone = auto).",
		Doc: "true means auto and false means off, as Gunicorn's boolean. A connection from a peer in " +
			"proxy_allow_ips (and from a unix socket) must start with a header of that version, else it " +
			"is answered 400 and closed: HAProxy's specification forbids guessing whether a header is " +
			"there. A connection from any other peer is served as a direct client, and refused with 403 " +
			"if it sends a header. A malformed header is answered 400. LOCAL and UNKNOWN headers (health " +
			"checks) keep the socket's addresses. See [observability.md](observability.md#proxy-protocol).",
		Gunicorn: "Gunicorn's is a boolean and v1 only, and takes a header as optional; asyncd also reads v2, " +
			"lets you pin the version, and requires the header from allowed peers.",
		check: checkEnum("off", "v1", "v2", "auto")},
	{Key: "proxy_allow_ips", Field: "ProxyAllowIPs", Type: TypeStringList, Default: []string{"127.0.0.1", "::1"},
		Flag: "proxy-allow-from", Env: env("proxy_allow_ips"), Group: GroupServerMechanics, Meta: "STRING",
		SplitCommas: true, Repeatable: true,
		Help:     "Peers (IPs, CIDRs, or * for any) allowed to send a PROXY protocol header; comma-separated.",
		Gunicorn: "Same; Gunicorn's default is 127.0.0.1 only in older releases.",
		check:    checkAllowList},
	{Key: "pidfile", Field: "PidFile", Type: TypeString, Default: "", Short: "p", Flag: "pid",
		Env: env("pidfile"), Group: GroupServerMechanics, Meta: "FILE",
		Help: "Write the supervisor's PID to this file; empty = none."},
	{Key: "user", Field: "User", Type: TypeString, Default: "", Short: "u", Flag: "user", Env: env("user"),
		Group: GroupServerMechanics, Meta: "USER",
		Help:     "Run the serving process as this user (name or uid); empty = unchanged.",
		Gunicorn: "Same; the name is looked up when the process switches, not when the config is read."},
	{Key: "group", Field: "Group", Type: TypeString, Default: "", Short: "g", Flag: "group", Env: env("group"),
		Group: GroupServerMechanics, Meta: "GROUP",
		Help: "Run the serving process with this group (name or gid); empty = unchanged."},
	{Key: "umask", Field: "Umask", Type: TypeFileMode, Default: 0, Short: "m", Flag: "umask", Env: env("umask"),
		Group: GroupServerMechanics, Meta: "INT",
		Help: "The file mode creation mask of asyncd's processes (octal, e.g. 0022).",
		Doc: "Applied to the supervisor at start and on reload, whenever it is set (in the file, " +
			"`ASYNCD_UMASK` or `-m`), `0000` included; serving processes inherit it. Left unset, asyncd " +
			"keeps the umask it was started with: the `0000` above is only what --print-config shows " +
			"then. As for socket_mode, strings are always octal; integers are taken as they are.",
		Gunicorn: "Gunicorn reads a string such as \"22\" as decimal; asyncd reads every string as " +
			"octal, as the umask command does.",
		check: modeMax(0o777)},
	{Key: "chdir", Field: "Chdir", Type: TypeString, Default: "", Flag: "chdir", Env: env("chdir"),
		Group: GroupServerMechanics, Meta: "DIR",
		Help:     "Change to this directory at start-up; empty = stay.",
		Gunicorn: "Gunicorn checks at load time that the directory exists; asyncd finds out when it changes to it."},
	{Key: "raw_env", Field: "RawEnv", Type: TypeStringList, Default: []string{}, Short: "e", Flag: "env",
		Env: env("raw_env"), Group: GroupServerMechanics, Meta: "ENV", Repeatable: true,
		Help:  "Set an environment variable for the serving process: KEY=VALUE; repeatable.",
		Doc:   "In ASYNCD_RAW_ENV separate entries with commas (so values cannot contain commas there).",
		check: checkRawEnv},
	{Key: "routes", Field: "Routes", Type: TypeRoutes, Default: []Route{}, Group: GroupServerMechanics,
		Help: "Handlers by path (config file only).",
		Doc: "A list of mappings with `path` (starting with /), `handler` (a plugin name), optional " +
			"`methods` (a list; default every method), `blocking` (true if the handler may block, " +
			"so it never runs on the event loop), `request_buffering` (default true; false hands the " +
			"handler the request body as it arrives, off the event loop, as nginx's " +
			"`proxy_request_buffering off`, instead of buffering a body up to body_buffer_size whole " +
			"before the handler runs) and `options` (passed to the plugin, which checks " +
			"them). No two routes may share a path and a method. Requests are routed on their " +
			"normalized path (percent-escapes of unreserved characters decoded, `.` and `..` " +
			"segments resolved, repeated slashes merged; docs/security.md#paths), and the method " +
			"check and every handler see that path, so a route's path must be in that form " +
			"(`/a/b/`, not `/a//b/` or `/%7Eb/`). " +
			"A `path` is exact, or a prefix when it ends in `/` (every path under it; the longest " +
			"prefix wins, an exact path before any prefix). `mount: /users` in place of `path` hands " +
			"the whole subtree to one handler with every method: `/users` exactly and every path " +
			"under `/users/` (not `/usersx`); it is the pair of an exact route `/users` and a prefix " +
			"route `/users/` without methods, so the same rules apply: a longer exact or prefix route " +
			"inside it wins, a route naming methods on `/users` or `/users/` takes those methods, and " +
			"another route without methods there is an error. A mount takes no `methods` (its handler " +
			"answers 405 itself) and is written without the trailing `/`. The handler sees the full " +
			"normalized path (`/users/42`, as an `http.ServeMux` with `GET /users/{id}` expects; no " +
			"prefix is stripped). Paths match literally: a `{name}` segment (Go 1.22 ServeMux " +
			"patterns) is refused, since it would answer 404 to every request; mount the subtree and " +
			"let the handler's ServeMux match the pattern (`r.PathValue` then works as under net/http).",
		Gunicorn: "asyncd only: it replaces Gunicorn's APP_MODULE / wsgi_app."},
	{Key: "preload_app", Flag: "preload", Type: TypeBool, Group: GroupServerMechanics, Support: Ignored,
		Reason: "handlers are compiled into the binary; there is no application to load before forking"},
	{Key: "sendfile", Flag: "no-sendfile", Type: TypeBool, Group: GroupServerMechanics, Support: Ignored,
		Reason: "the engine decides how responses are written"},
	{Key: "daemon", Short: "D", Flag: "daemon", Type: TypeBool, Group: GroupServerMechanics, Support: RejectedIfSet,
		Reason: "asyncd does not daemonize: run it in the foreground under systemd, supervisord or a container runtime"},
	{Key: "worker_tmp_dir", Flag: "worker-tmp-dir", Type: TypeAny, Group: GroupServerMechanics, Support: Ignored,
		Reason: "the heartbeat does not use files"},
	{Key: "initgroups", Flag: "initgroups", Type: TypeBool, Group: GroupServerMechanics, Support: Ignored,
		Reason: "only user and group are applied"},
	{Key: "tmp_upload_dir", Type: TypeAny, Group: GroupServerMechanics, Support: Ignored,
		Reason: "request bodies are never spooled to disk: bodies above body_buffer_size are streamed to the handler"},
	{Key: "pythonpath", Flag: "pythonpath", Type: TypeAny, Group: GroupServerMechanics, Support: Ignored,
		Reason: reasonNoPython},
	{Key: "paste", Flag: "paste", FlagAliases: []string{"paster"}, Type: TypeAny, Group: GroupServerMechanics,
		Support: Rejected, Reason: reasonNoPaste},
	{Key: "raw_paste_global_conf", Flag: "paste-global", Type: TypeAny, Repeatable: true,
		Group: GroupServerMechanics, Support: Ignored, Reason: reasonNoPaste},
	{Key: "strip_header_spaces", Flag: "strip-header-spaces", Type: TypeBool, Group: GroupServerMechanics,
		Support: RejectedIfSet, Reason: reasonStrict},
	{Key: "permit_obsolete_folding", Flag: "permit-obsolete-folding", Type: TypeBool, Group: GroupServerMechanics,
		Support: RejectedIfSet, Reason: reasonStrict},
	{Key: "permit_unconventional_http_method", Flag: "permit-unconventional-http-method", Type: TypeBool,
		Group: GroupServerMechanics, Support: RejectedIfSet, Reason: reasonStrict},
	{Key: "permit_unconventional_http_version", Flag: "permit-unconventional-http-version", Type: TypeBool,
		Group: GroupServerMechanics, Support: RejectedIfSet, Reason: reasonStrict},
	{Key: "casefold_http_method", Flag: "casefold-http-method", Type: TypeBool, Group: GroupServerMechanics,
		Support: RejectedIfSet, Reason: reasonStrict},
	{Key: "header_map", Flag: "header-map", Type: TypeAny, Group: GroupServerMechanics, Support: Ignored,
		Reason: "there is no WSGI environ: header names reach handlers as sent, so - and _ never collide"},
	{Key: "forwarder_headers", Flag: "forwarder-headers", Type: TypeAny, Group: GroupServerMechanics, Support: Ignored,
		Reason: "there is no WSGI environ to fill from forwarded headers"},

	// Logging
	{Key: "accesslog", Field: "AccessLog", Type: TypeString, Default: "", Flag: "access-logfile",
		Env: env("accesslog"), Group: GroupLogging, Meta: "FILE",
		Help: "The access log: a file, - for stdout, or empty for none."},
	{Key: "access_log_format", Field: "AccessLogFormat", Type: TypeString, Default: gunicornAccessLogFormat,
		Flag: "access-logformat", Env: env("access_log_format"), Group: GroupLogging, Meta: "STRING",
		Help: "The access log line format, with Gunicorn's %(x)s atoms.",
		Doc: "Gunicorn's atoms: h remote address, l `-`, u user name, t date, r request line, " +
			"m method, U path, q query, H protocol, s status, B response length, b length or `-`, " +
			"f referrer, a user agent, T/M/D/L request time in s/ms/µs/decimal s, p process ID, " +
			"{header}i request header, {header}o response header, {variable}e environment variable."},
	{Key: "access_log_json", Field: "AccessLogJSON", Type: TypeBool, Default: false, Flag: "access-log-json",
		Env: env("access_log_json"), Group: GroupLogging,
		Help:     "Write access log lines as JSON objects instead of access_log_format.",
		Gunicorn: "asyncd only."},
	{Key: "errorlog", Field: "ErrorLog", Type: TypeString, Default: "-", Flag: "error-logfile",
		FlagAliases: []string{"log-file"}, Env: env("errorlog"), Group: GroupLogging, Meta: "FILE",
		Help: "The error log: a file, or - for stderr."},
	{Key: "loglevel", Field: "LogLevel", Type: TypeEnum, Default: LogInfo,
		Choices: []string{"debug", "info", "warning", "error", "critical"},
		Flag:    "log-level", Env: env("loglevel"), Group: GroupLogging, Meta: "LEVEL",
		Help:  "The error log's level: debug, info, warning, error or critical.",
		check: checkEnum("debug", "info", "warning", "error", "critical")},
	{Key: "error_log_format", Field: "ErrorLogFormat", Type: TypeEnum, Default: LogText,
		Choices: []string{"text", "json"}, Flag: "error-log-format", Env: env("error_log_format"),
		Group: GroupLogging, Meta: "FORMAT",
		Help:     "The error log's line format: text or json.",
		Gunicorn: "asyncd only.",
		check:    checkEnum("text", "json")},
	{Key: "disable_redirect_access_to_syslog", Flag: "disable-redirect-access-to-syslog", Type: TypeBool,
		Group: GroupLogging, Support: Ignored, Reason: reasonSyslog},
	{Key: "capture_output", Flag: "capture-output", Type: TypeBool, Group: GroupLogging, Support: Ignored,
		Reason: "handlers are Go code writing to the process's own stdout and stderr; collect those with the service manager"},
	{Key: "logger_class", Flag: "logger-class", Type: TypeAny, Group: GroupLogging, Support: Ignored,
		Reason: "the logger is built in: use error_log_format and access_log_json"},
	{Key: "logconfig", Flag: "log-config", Type: TypeAny, Group: GroupLogging, Support: RejectedIfSet, Reason: reasonNoPyLog},
	{Key: "logconfig_dict", Type: TypeAny, Group: GroupLogging, Support: RejectedIfSet, Reason: reasonNoPyLog},
	{Key: "logconfig_json", Flag: "log-config-json", Type: TypeAny, Group: GroupLogging, Support: RejectedIfSet,
		Reason: reasonNoPyLog},
	{Key: "syslog_addr", Flag: "log-syslog-to", Type: TypeAny, Group: GroupLogging, Support: Ignored, Reason: reasonSyslog},
	{Key: "syslog", Flag: "log-syslog", Type: TypeBool, Group: GroupLogging, Support: RejectedIfSet, Reason: reasonSyslog},
	{Key: "syslog_prefix", Flag: "log-syslog-prefix", Type: TypeAny, Group: GroupLogging, Support: Ignored,
		Reason: reasonSyslog},
	{Key: "syslog_facility", Flag: "log-syslog-facility", Type: TypeAny, Group: GroupLogging, Support: Ignored,
		Reason: reasonSyslog},
	{Key: "enable_stdio_inheritance", Short: "R", Flag: "enable-stdio-inheritance", Type: TypeBool,
		Group: GroupLogging, Support: Ignored, Reason: "asyncd never daemonizes, so standard I/O is always inherited"},
	{Key: "statsd_host", Field: "StatsdHost", Type: TypeString, Default: "", Flag: "statsd-host",
		Env: env("statsd_host"), Group: GroupLogging, Meta: "STATSD_ADDR",
		Help: "Send Gunicorn's StatsD metrics to this HOST:PORT (UDP) or unix://PATH; empty = none.",
		Doc: "Metrics: `gunicorn.requests` and `gunicorn.request.status.<code>` (counters), " +
			"`gunicorn.request.duration` (timer, ms) and `gunicorn.workers` (gauge: event loops), sent " +
			"once a second. See [observability.md](observability.md#statsd).",
		Gunicorn: "Same names, but Gunicorn's `gunicorn.log.*` counters are not sent.",
		check:    checkStatsdHost},
	{Key: "dogstatsd_tags", Field: "DogstatsdTags", Type: TypeString, Default: "", Flag: "dogstatsd-tags",
		Env: env("dogstatsd_tags"), Group: GroupLogging, Meta: "DOGSTATSD_TAGS",
		Help:  "Comma-separated DogStatsD tags (key:value) appended to every StatsD metric.",
		check: checkStatsdTags},
	{Key: "statsd_prefix", Field: "StatsdPrefix", Type: TypeString, Default: "", Flag: "statsd-prefix",
		Env: env("statsd_prefix"), Group: GroupLogging, Meta: "STATSD_PREFIX",
		Help:  "Prefix of every StatsD metric name (a trailing dot is added).",
		check: checkStatsdPrefix},
	{Key: "metrics_bind", Field: "MetricsBind", Type: TypeString, Default: "", Flag: "metrics-bind",
		Env: env("metrics_bind"), Group: GroupLogging, Meta: "ADDRESS",
		Help: "Serve Prometheus metrics at /metrics on this HOST:PORT or unix:PATH, apart from bind; empty = none.",
		Doc: "Served by each serving process with net/http, off the event loops. The supervisor binds " +
			"the socket (a unix socket gets socket_mode and socket_owner, as bind's) and keeps it open " +
			"across reloads, restarts and binary upgrades, as bind's sockets: a scrape queued while one " +
			"generation hands over to the next waits for the next. " +
			"See [observability.md](observability.md#metrics).",
		Gunicorn: "asyncd only.",
		check:    checkMetricsBind},

	// Process Naming
	{Key: "proc_name", Short: "n", Flag: "name", Type: TypeAny, Group: GroupProcessNaming, Support: Ignored,
		Reason: reasonNoProcTit},
	{Key: "default_proc_name", Type: TypeAny, Group: GroupProcessNaming, Support: Ignored, Reason: reasonNoProcTit},

	// SSL
	{Key: "keyfile", Flag: "keyfile", Type: TypeAny, Group: GroupSSL, Support: RejectedIfSet, Reason: reasonNoTLS},
	{Key: "certfile", Flag: "certfile", Type: TypeAny, Group: GroupSSL, Support: RejectedIfSet, Reason: reasonNoTLS},
	{Key: "ca_certs", Flag: "ca-certs", Type: TypeAny, Group: GroupSSL, Support: RejectedIfSet, Reason: reasonNoTLS},
	{Key: "ssl_version", Flag: "ssl-version", Type: TypeAny, Group: GroupSSL, Support: Ignored, Reason: reasonNoTLS},
	{Key: "cert_reqs", Flag: "cert-reqs", Type: TypeAny, Group: GroupSSL, Support: Ignored, Reason: reasonNoTLS},
	{Key: "suppress_ragged_eofs", Flag: "suppress-ragged-eofs", Type: TypeBool, Group: GroupSSL, Support: Ignored,
		Reason: reasonNoTLS},
	{Key: "do_handshake_on_connect", Flag: "do-handshake-on-connect", Type: TypeBool, Group: GroupSSL,
		Support: Ignored, Reason: reasonNoTLS},
	{Key: "ciphers", Flag: "ciphers", Type: TypeAny, Group: GroupSSL, Support: Ignored, Reason: reasonNoTLS},

	// Server Hooks
	{Key: "on_starting", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason("run that step with ExecStartPre= in the systemd unit, or in the container's entrypoint before exec asyncd")},
	{Key: "on_reload", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason("run that step with ExecReload= before the signal: ExecReload=/bin/sh -c 'your-step && /bin/kill -HUP $MAINPID'")},
	{Key: "when_ready", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason("asyncd reports readiness: with Type=notify, systemd starts units ordered After=asyncd.service once asyncd serves (or use ExecStartPost=); load balancers and Kubernetes use the health plugin's readiness route")},
	{Key: "pre_fork", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason(reasonProvision)},
	{Key: "post_fork", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason(reasonProvision)},
	{Key: "post_worker_init", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason(reasonProvision)},
	{Key: "worker_int", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason("a handler sees Ctx.Context() cancelled when its connection is closed")},
	{Key: "worker_abort", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason("nothing to replace: after a missed heartbeat every goroutine's stack is in the error log")},
	{Key: "pre_exec", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason("run that step before sending USR2")},
	{Key: "pre_request", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason("wrap the handler (an engine.Handler that calls another, or net/http middleware); per-request logging is the access log")},
	{Key: "post_request", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason("wrap the handler (an engine.Handler that calls another, or net/http middleware); per-request logging is the access log")},
	{Key: "child_exit", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason("the supervisor logs \"serving process exited\" with the exit status")},
	{Key: "worker_exit", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason("per-process tear-down goes in a handler plugin's Cleanup (plugins.CleanerUpper), run after the serving process's last request; the supervisor logs \"serving process exited\" with the exit status")},
	{Key: "nworkers_changed", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason("the supervisor logs \"changing the number of event loops\" on TTIN and TTOU")},
	{Key: "on_exit", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason("run that step with ExecStopPost= in the systemd unit")},
	{Key: "ssl_context", Type: TypeAny, Group: GroupServerHooks, Support: Rejected,
		Reason: hookReason("TLS is terminated in front of asyncd (nginx, HAProxy, a load balancer)")},
}

// reasonProvision replaces the per-process start-up hooks.
const reasonProvision = "per-process set-up goes in a handler plugin's Provision (plugins.Provisioner), which runs in each " +
	"serving process before it takes traffic; not in its factory, which also runs in the supervisor and for --check-config"
