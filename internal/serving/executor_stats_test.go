package serving

// elasticStats is one loop's pool, for tests.
type elasticStats struct {
	Workers, Free, Detached, Waiting, Highest int
}

func (e *elasticExecutor) stats(loop int) elasticStats {
	s := e.shards[loop]
	s.mu.Lock()
	defer s.mu.Unlock()
	slack := int(s.slack.Load())
	return elasticStats{Workers: s.workers, Free: max(slack, 0), Detached: s.detached, Waiting: max(-slack, 0),
		Highest: s.highest}
}
