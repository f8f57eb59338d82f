// Package standard imports the event-loop backends asyncd ships, so that a
// binary (asyncd's own, or a team's custom build) can run any of them: each
// registers itself (loop.Register) when imported. The serving process and
// the supervisor import it; a plugin backend is added with one more blank
// import of its own package. It owns nothing else.
package standard

import (
	_ "github.com/asyncd/asyncd/loop/epoll" // "epoll"
	_ "github.com/asyncd/asyncd/loop/uring" // "io_uring"
)
