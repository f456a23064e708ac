//! Integration tests: nri-wasm against the runtime simulator over real
//! unix sockets.
