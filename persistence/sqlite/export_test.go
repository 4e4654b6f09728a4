package sqlite

// QueuedSaves returns how many saves of the factory's database wait to be
// committed together.
func QueuedSaves(f *Factory) int { return f.db.QueuedSaves() }
