// {{name}}: sets TEAM in the environment of every new container from its
// pod's `team` label. Containers of pods without the label are left alone.
//
// Go has no wit-bindgen runtime in our registries: abi.go is the canonical
// ABI by hand, and `nri-wasm build` generates layout.go from wit/, with
// the size, alignment and field offsets of every WIT type. Each export
// of the world is a //go:wasmexport function taking and returning
// addresses in the plugin's memory.

package main

const (
	label = "team"
	env   = "TEAM"
)

// The events this plugin asks for: CreateContainer (flags bit 3).
const eventsCreateContainer = 1 << 3

//go:wasmexport nri:plugin/lifecycle@0.1.0#configure
func configure(_, _, _, _, _, _, _, _ uint32, _ int64) uint32 {
	beginCall()
	defer endCall()
	log(levelInfo, "setting "+env+" from the pod label "+label)
	ret, payload := okResult(EventsSize, EventsAlign)
	store16(payload, eventsCreateContainer)
	return ret
}

//go:wasmexport nri:plugin/lifecycle@0.1.0#synchronize
func synchronize(_, _, _, _ uint32) uint32 {
	beginCall()
	defer endCall()
	// An empty list of updates.
	ret, _ := okResult(8, 4)
	return ret
}

// labelOf is the value of the label key of the pod at pod.
func labelOf(pod uint32, key string) (string, bool) {
	list, length := load32(pod+PodSandboxLabels), load32(pod+PodSandboxLabels+4)
	for i := uint32(0); i < length; i++ {
		entry := list + i*KeyValueSize
		if loadString(entry) == key {
			return loadString(entry + 8), true
		}
	}
	return "", false
}

//go:wasmexport nri:plugin/adjuster@0.1.0#create-container
func createContainer(params uint32) uint32 {
	beginCall()
	defer endCall()
	ret, reply := okResult(CreateReplySize, CreateReplyAlign)
	team, ok := labelOf(params, label)
	if !ok {
		return ret
	}
	adjust := reply + CreateReplyAdjust
	store8(adjust, 1) // some
	adjustment := adjust + ContainerAdjustmentAlign
	entry := alloc(KeyValueSize)
	storeString(entry, env)
	storeString(entry+8, team)
	store32(adjustment+ContainerAdjustmentEnv, entry)
	store32(adjustment+ContainerAdjustmentEnv+4, 1)
	return ret
}

//go:wasmexport nri:plugin/adjuster@0.1.0#update-container
func updateContainer(_ uint32) uint32 {
	beginCall()
	defer endCall()
	ret, _ := okResult(UpdateReplySize, UpdateReplyAlign)
	return ret
}

//go:wasmexport nri:plugin/adjuster@0.1.0#stop-container
func stopContainer(_ uint32) uint32 {
	beginCall()
	defer endCall()
	ret, _ := okResult(UpdateReplySize, UpdateReplyAlign)
	return ret
}

func main() {}
