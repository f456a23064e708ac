// pod-metadata: gives every container the identity of its pod in its
// environment, as Kubernetes' downward API would, without touching the
// pod's spec: POD_NAME, POD_NAMESPACE, POD_UID and CONTAINER_NAME.
//
// Configuration: a prefix for the variable names (for example "K8S_");
// empty by default.

package main

import "strings"

var prefix string

// The events this plugin asks for: CreateContainer (flags bit 3).
const eventsCreateContainer = 1 << 3

//go:wasmexport nri:plugin/lifecycle@0.1.0#configure
func configure(configPtr, configLen, _, _, _, _, _, _ uint32, _ int64) uint32 {
	beginCall()
	defer endCall()
	config := strings.TrimSpace(string(bytesAt(configPtr, configLen)))
	if strings.ContainsAny(config, " \t\n=") {
		return errResult(EventsSize, EventsAlign, "the configuration is a variable name prefix, like K8S_")
	}
	prefix = config
	log(levelInfo, "pod metadata as "+prefix+"POD_NAME, "+prefix+"POD_NAMESPACE, "+prefix+"POD_UID, "+prefix+"CONTAINER_NAME")
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

//go:wasmexport nri:plugin/adjuster@0.1.0#create-container
func createContainer(params uint32) uint32 {
	beginCall()
	defer endCall()
	pod := params
	container := params + alignTo(PodSandboxSize, ContainerAlign)
	env := [][2]string{
		{"POD_NAME", loadString(pod + PodSandboxName)},
		{"POD_NAMESPACE", loadString(pod + PodSandboxNamespace)},
		{"POD_UID", loadString(pod + PodSandboxUid)},
		{"CONTAINER_NAME", loadString(container + ContainerName)},
	}
	ret, reply := okResult(CreateReplySize, CreateReplyAlign)
	adjust := reply + CreateReplyAdjust
	store8(adjust, 1) // some
	adjustment := adjust + ContainerAdjustmentAlign
	list := alloc(uint32(len(env)) * KeyValueSize)
	for i, kv := range env {
		entry := list + uint32(i)*KeyValueSize
		storeString(entry, prefix+kv[0])
		storeString(entry+8, kv[1])
	}
	store32(adjustment+ContainerAdjustmentEnv, list)
	store32(adjustment+ContainerAdjustmentEnv+4, uint32(len(env)))
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
