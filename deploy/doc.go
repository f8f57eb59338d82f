// Package deploy holds asyncd's deployment files (an nginx site, systemd
// service and socket units, a Dockerfile, Kubernetes manifests, and the
// asyncd config for each; deploy/README.md walks through them) and the test
// that keeps them, and every other asyncd config in the repository, honest.
//
// The test builds the real asyncd binary once and checks that every config
// under docs/, deploy/ and examples/ (and the examples marked in the
// Markdown docs) passes `asyncd --check-config`, that the units' and
// manifests' timeouts, addresses, probes and paths agree with the configs
// they go with, and that --help and --version say what the docs promise.
//
// It owns no Go code that anything imports: this file exists only to carry
// the package documentation.
package deploy
