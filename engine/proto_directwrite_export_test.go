package engine

// SetProtoDirectWrite turns the direct-write prototype on or off for a
// benchmark and returns the function that restores it.
func SetProtoDirectWrite(on bool) (restore func()) {
	old := protoDirectWrite
	protoDirectWrite = on
	return func() { protoDirectWrite = old }
}
