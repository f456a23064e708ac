//! The one wasmtime engine of the daemon, its epoch ticker, and the linker
//! that gives guests their only import: the host's log.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use wasmtime::{component::Linker, Config, Engine, OptLevel};

use super::{bindings::Plugin, sandbox::GuestState};

/// How often the epoch advances; guest deadlines are counted in ticks of
/// this length, so a deadline is enforced to within one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Wasm stack a guest call may use. Deep recursion traps here instead of
/// exhausting the host thread's stack.
pub const MAX_WASM_STACK: usize = 512 * 1024;

/// Why the engine could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// wasmtime refused the configuration or the linker definitions.
    #[error("cannot set up the Wasm engine: {0}")]
    Wasmtime(#[from] wasmtime::Error),
}

/// The engine, the linker of the guest world, and the epoch ticker. Cheap
/// to clone; the ticker stops when the last clone is dropped.
#[derive(Clone)]
pub struct WasmEngine {
    engine: Engine,
    linker: Arc<Linker<GuestState>>,
    _ticker: Arc<Ticker>,
}

impl WasmEngine {
    /// Builds the engine: component model, epoch interruption, a bounded
    /// Wasm stack, and a linker with the `log` import and WASI 0.2 and
    /// nothing else.
    pub fn new() -> Result<Self, EngineError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            .cranelift_opt_level(OptLevel::Speed)
            .parallel_compilation(true);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        Plugin::add_to_linker::<GuestState, wasmtime::component::HasSelf<GuestState>>(
            &mut linker,
            |state| state,
        )?;
        // WASI for the guests whose toolchains import it; what it can
        // reach is each guest's own WasiAccess (nothing unless granted).
        // Its asynchronous form: a guest waiting in WASI (a timer, a poll)
        // yields to the host, which ends the call at its deadline.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        let ticker = Ticker::start(engine.clone());
        Ok(WasmEngine {
            engine,
            linker: Arc::new(linker),
            _ticker: Arc::new(ticker),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker of guests: `log` and WASI 0.2, nothing else.
    pub fn linker(&self) -> &Linker<GuestState> {
        &self.linker
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a thread of its own.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name("nri-wasm-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Ticker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}
