//! The real `nri-wasm run` process, its log collected as it comes.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// The `nri-wasm run` process, its log lines collected as they come.
pub struct Daemon {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts `nri-wasm run` on `socket` with the guests of `plugins`.
    pub fn start(socket: &std::path::Path, plugins: &std::path::Path) -> Daemon {
        Daemon::start_with(socket, plugins, &[])
    }

    /// Starts `nri-wasm run` with `extra` arguments as well.
    pub fn start_with(
        socket: &std::path::Path,
        plugins: &std::path::Path,
        extra: &[&std::ffi::OsStr],
    ) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nri-wasm"))
            .args(["run", "--socket"])
            .arg(socket)
            .arg("--plugins")
            .arg(plugins)
            .arg("--cache-dir")
            .arg(crate::guests::compile_cache())
            .args(["--status-address", "127.0.0.1:0"])
            .args(extra)
            .env("NRI_WASM_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("nri-wasm starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Daemon { child, log }
    }

    /// Waits until the log says `needle`; fails the test if it never does.
    pub async fn wait_for_log(&self, needle: &str) {
        let found = timeout(WAIT, async {
            while !self.log.lock().unwrap().contains(needle) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "log never said {needle:?}; it said:\n{}",
            self.log.lock().unwrap()
        );
    }

    /// The address of the status endpoint, from the log.
    pub async fn status_address(&self) -> std::net::SocketAddr {
        const SAID: &str = "serving /metrics, /healthz and /readyz address=";
        self.wait_for_log(SAID).await;
        let log = self.log.lock().unwrap();
        let rest = &log[log.find(SAID).unwrap() + SAID.len()..];
        let address = rest.split_whitespace().next().unwrap();
        address.parse().unwrap()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Whether the process is still up.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
