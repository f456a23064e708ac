//! What a guest's store holds: its memory and table limits, its import
//! `log` (rate limited, tagged with the guest's name), and a WASI context
//! with nothing in it but the read-only directories, clocks and randomness
//! the guest was granted.

use std::{convert::Infallible, path::PathBuf, time::Instant};

use serde::{Deserialize, Serialize};
use wasmtime::{component::ResourceTable, ResourceLimiter};
use wasmtime_wasi::{
    clocks::{HostMonotonicClock, HostWallClock},
    FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use super::bindings::{log, types};
use crate::untrusted::{GuestText, TokenBucket, MAX_LOG_LINE};

/// Log lines a guest may write per second, on average.
pub const LOG_LINES_PER_SECOND: f64 = 50.0;
/// Log lines a guest may write in a burst.
pub const LOG_BURST: f64 = 200.0;
/// Table elements a guest may have, all its tables together.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Core instances, linear memories and tables a guest's component may
/// create. Toolchains make a handful (a module, its WASI adapter, their
/// shims); the memory cap counts all memories together, so these only
/// bound the bookkeeping.
pub const MAX_INSTANCES: usize = 64;
/// See [`MAX_INSTANCES`].
pub const MAX_MEMORIES: usize = 16;
/// See [`MAX_INSTANCES`].
pub const MAX_TABLES: usize = 64;

/// A directory of the host a guest may read, and where it sees it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PreopenDir {
    /// The directory on the host.
    pub host: PathBuf,
    /// Its path inside the guest.
    pub guest: String,
}

/// What WASI reaches for a guest (`[plugins.NAME.wasi]`): read-only
/// directories, and clocks and randomness, if granted; by default nothing.
/// Never environment, arguments, network or writable files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WasiAccess {
    /// Directories to read.
    #[serde(default)]
    pub dirs: Vec<PreopenDir>,
    /// Real clocks; without, every clock reads 0.
    #[serde(default)]
    pub clocks: bool,
    /// Real randomness; without, random bytes are zeros.
    #[serde(default)]
    pub random: bool,
}

impl WasiAccess {
    /// The WASI context this access allows.
    pub fn context(&self) -> wasmtime::Result<WasiCtx> {
        let mut builder = WasiCtxBuilder::new();
        builder
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for dir in &self.dirs {
            builder.preopened_dir(&dir.host, &dir.guest, FsPerms::ReadOnly)?;
        }
        if !self.clocks {
            builder
                .wall_clock(StoppedClock)
                .monotonic_clock(StoppedClock);
        }
        if !self.random {
            builder
                .secure_random(NoRandom)
                .insecure_random(NoRandom)
                .insecure_random_seed(0);
        }
        Ok(builder.build())
    }
}

/// The clocks of a guest not granted clocks: always 0.
struct StoppedClock;

impl HostWallClock for StoppedClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl HostMonotonicClock for StoppedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The randomness of a guest not granted randomness: zeros.
struct NoRandom;

impl rand_core::TryRng for NoRandom {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        dst.fill(0);
        Ok(())
    }
}

/// Per-store state of a guest.
pub struct GuestState {
    guest: String,
    memory_limit: usize,
    /// Bytes of all the guest's linear memories together.
    memory_used: usize,
    memory_denied: bool,
    /// Elements of all the guest's tables together.
    table_elements: usize,
    log: TokenBucket,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl GuestState {
    /// State for guest `NN-name`, with linear memories capped at
    /// `memory_limit` bytes and the WASI context `wasi` (empty for guests
    /// without WASI access, whose linker has no WASI).
    pub fn new(guest: String, memory_limit: usize, wasi: WasiCtx) -> Self {
        GuestState {
            guest,
            memory_limit,
            memory_used: 0,
            memory_denied: false,
            table_elements: 0,
            log: TokenBucket::new(LOG_LINES_PER_SECOND, LOG_BURST),
            wasi,
            table: ResourceTable::new(),
        }
    }

    /// Whether a memory growth was refused since the last call began.
    pub fn take_memory_denied(&mut self) -> bool {
        std::mem::take(&mut self.memory_denied)
    }
}

/// The cap is on all of a guest's memories (and tables) together: a
/// component may hold many core instances, each with memories of its own.
impl ResourceLimiter for GuestState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.memory_used - current.min(self.memory_used) + desired;
        if total > self.memory_limit {
            self.memory_denied = true;
            return Ok(false);
        }
        self.memory_used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.table_elements - current.min(self.table_elements) + desired;
        if total > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.table_elements = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

impl types::Host for GuestState {}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl log::Host for GuestState {
    fn log(&mut self, level: log::Level, message: String) {
        // A line the host's log filter drops costs no share of the rate
        // limit, so a guest's debug lines never crowd out its warnings.
        if !enabled(level) {
            return;
        }
        if !self.log.take(Instant::now()) {
            return;
        }
        let suppressed = self.log.take_suppressed();
        if suppressed > 0 {
            tracing::warn!(guest = %self.guest, lines = suppressed, "guest log lines suppressed (rate limit)");
        }
        // Escaped and quoted: a line cannot forge another, nor fields.
        let message = GuestText::new(&message, MAX_LOG_LINE);
        let guest = &self.guest;
        match level {
            log::Level::Debug => tracing::debug!(target: "guest", %guest, "\"{message}\""),
            log::Level::Info => tracing::info!(target: "guest", %guest, "\"{message}\""),
            log::Level::Warn => tracing::warn!(target: "guest", %guest, "\"{message}\""),
            log::Level::Error => tracing::error!(target: "guest", %guest, "\"{message}\""),
        }
    }

    fn enabled(&mut self, level: log::Level) -> bool {
        enabled(level)
    }
}

fn enabled(level: log::Level) -> bool {
    match level {
        log::Level::Debug => tracing::enabled!(target: "guest", tracing::Level::DEBUG),
        log::Level::Info => tracing::enabled!(target: "guest", tracing::Level::INFO),
        log::Level::Warn => tracing::enabled!(target: "guest", tracing::Level::WARN),
        log::Level::Error => tracing::enabled!(target: "guest", tracing::Level::ERROR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_beyond_the_cap_is_refused_and_noted() {
        let mut state = GuestState::new("10-x".into(), 1 << 20, WasiCtx::builder().build());
        assert!(state.memory_growing(0, 1 << 19, None).unwrap());
        assert!(state.memory_growing(1 << 19, 1 << 20, None).unwrap());
        assert!(!state.memory_growing(1 << 20, (1 << 20) + 1, None).unwrap());
        assert!(state.take_memory_denied());
        assert!(!state.take_memory_denied());
    }

    /// A component of several core instances, each with a memory of its
    /// own: the cap counts them together.
    #[test]
    fn the_memory_cap_is_on_all_of_a_guests_memories_together() {
        let engine = wasmtime::Engine::default();
        let instances = |n: usize| {
            let each = "(core instance (instantiate $m))".repeat(n);
            let text = format!("(component (core module $m (memory 256)) {each})");
            let bytes = wat::parse_str(text).unwrap();
            wasmtime::component::Component::new(&engine, bytes).unwrap()
        };
        let instantiate = |component: &wasmtime::component::Component| {
            let state = GuestState::new("10-x".into(), 64 << 20, WasiCtx::builder().build());
            let mut store = wasmtime::Store::new(&engine, state);
            store.limiter(|state| state);
            let linker = wasmtime::component::Linker::new(&engine);
            let result = linker.instantiate(&mut store, component).map(drop);
            (result, store.data_mut().take_memory_denied())
        };
        // Four memories of 16 MiB fit a 64 MiB cap; a fifth does not.
        assert!(instantiate(&instances(4)).0.is_ok());
        let (result, denied) = instantiate(&instances(5));
        assert!(result.is_err() && denied, "a fifth memory beyond the cap");
        // Nor does a component of more instances than the host keeps books on.
        let (result, _) = instantiate(&instances(MAX_INSTANCES + 1));
        assert!(result.is_err());
    }
}
