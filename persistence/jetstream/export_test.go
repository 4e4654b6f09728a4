package jetstream

// EncodeEventForBench is encodeEvent, for the benchmarks' raw messages of
// the same size.
var EncodeEventForBench = encodeEvent
