package postgres

// QueuedSaves returns how many saves on the factory's pool wait to be
// committed together.
func QueuedSaves(f *Factory) int { return f.pool.group.Queued() }
