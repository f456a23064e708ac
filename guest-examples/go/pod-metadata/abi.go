// The canonical ABI, by hand, for what this plugin exchanges with the
// host: memory the host allocates for arguments, strings and lists read
// from it, answers written into memory kept alive until the next call.
// Sizes and offsets come from layout.go, generated from the WIT.

package main

import "unsafe"

// Argument memory the host allocated for the current call.
var args [][]uint64

// The previous answer, which the host reads after the call returns.
var answer [][]uint64

//go:wasmexport cabi_realloc
func cabiRealloc(old, oldSize, align, size uint32) uint32 {
	p := allocIn(&args, size)
	if old != 0 {
		copy(bytesAt(p, min(oldSize, size)), bytesAt(old, min(oldSize, size)))
	}
	return p
}

// allocIn allocates size zeroed bytes, 8-aligned, kept in keep.
func allocIn(keep *[][]uint64, size uint32) uint32 {
	buf := make([]uint64, size/8+1)
	*keep = append(*keep, buf)
	return uint32(uintptr(unsafe.Pointer(&buf[0])))
}

// alloc allocates size zeroed bytes of the answer.
func alloc(size uint32) uint32 { return allocIn(&answer, size) }

// beginCall drops the previous answer; endCall drops the arguments.
func beginCall() { answer = nil }
func endCall()   { args = nil }

func bytesAt(p, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(p))), n)
}

func load32(p uint32) uint32     { return *(*uint32)(unsafe.Pointer(uintptr(p))) }
func store8(p uint32, v uint8)   { *(*uint8)(unsafe.Pointer(uintptr(p))) = v }
func store16(p uint32, v uint16) { *(*uint16)(unsafe.Pointer(uintptr(p))) = v }
func store32(p uint32, v uint32) { *(*uint32)(unsafe.Pointer(uintptr(p))) = v }

// loadString copies the string (pointer, length) stored at p.
func loadString(p uint32) string { return string(bytesAt(load32(p), load32(p+4))) }

// storeString copies s into the answer and stores (pointer, length) at p.
func storeString(p uint32, s string) {
	data := alloc(uint32(len(s)))
	copy(bytesAt(data, uint32(len(s))), s)
	store32(p, data)
	store32(p+4, uint32(len(s)))
}

func alignTo(n, align uint32) uint32 { return (n + align - 1) / align * align }

// resultPayload is where the payload of result<T, string> starts.
func resultPayload(align uint32) uint32 { return max(align, 4) }

// okResult allocates a result<T, string> holding ok; the T at the
// returned address is zero until written.
func okResult(size, align uint32) (ret, payload uint32) {
	ret = alloc(resultPayload(align) + max(size, 8))
	return ret, ret + resultPayload(align)
}

// errResult allocates a result<T, string> holding err(message).
func errResult(size, align uint32, message string) uint32 {
	ret := alloc(resultPayload(align) + max(size, 8))
	store8(ret, 1)
	storeString(ret+resultPayload(align), message)
	return ret
}

//go:wasmimport nri:plugin/log@0.1.0 log
func hostLog(level, message, length uint32)

const (
	levelDebug = 0
	levelInfo  = 1
	levelWarn  = 2
	levelError = 3
)

func log(level uint32, message string) {
	if len(message) == 0 {
		return
	}
	buf := []byte(message)
	hostLog(level, uint32(uintptr(unsafe.Pointer(&buf[0]))), uint32(len(buf)))
}
