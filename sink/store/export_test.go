package store

// CheckSpec exposes spec checking to the black-box fuzz test, which cannot afford a database
// round trip per input.
func CheckSpec(sp CameraSpec) (Camera, error) { return sp.camera() }

// MachineMemory exposes what the private cluster's buffers are sized from.
func MachineMemory() int64 { return machineMemory() }
