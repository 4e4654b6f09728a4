package dynamodb

// SetBeforeErase makes the factory's deletions and purges call hook
// between their reads and their transaction, so that a test can land a
// write exactly there.
func SetBeforeErase(f *Factory, hook func()) { f.s.beforeErase = hook }
