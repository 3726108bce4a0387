//! Local Mosquitto processes on free loopback ports, for `roomctl demo` and
//! for the integration tests (which use real brokers, never mocks).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// A running `mosquitto` that is killed when dropped.
pub struct Mosquitto {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

/// Finds the mosquitto binary (Debian installs it in /usr/sbin).
pub fn find_mosquitto() -> Option<PathBuf> {
    crate::check::which("mosquitto").or_else(|| {
        ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    })
}

/// A port that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Mosquitto {
    /// Starts a broker on a free port and waits until it accepts connections.
    pub async fn start() -> anyhow::Result<Mosquitto> {
        Self::start_free("").await
    }

    /// Like [`Mosquitto::start`], with extra lines for `mosquitto.conf`.
    #[cfg(any(test, feature = "testkit"))]
    pub async fn start_with(extra_conf: &str) -> anyhow::Result<Mosquitto> {
        Self::start_free(extra_conf).await
    }

    async fn start_free(extra_conf: &str) -> anyhow::Result<Mosquitto> {
        let mut last = None;
        for _ in 0..5 {
            match Self::start_conf(free_port()?, extra_conf).await {
                Ok(m) => return Ok(m),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// [`Mosquitto::start_with`] on a given port (a killed one coming back).
    #[cfg(any(test, feature = "testkit"))]
    pub async fn start_with_on(port: u16, extra_conf: &str) -> anyhow::Result<Mosquitto> {
        Self::start_conf(port, extra_conf).await
    }

    /// Starts a broker on `port` (e.g. to bring a killed one back).
    pub async fn start_on(port: u16) -> anyhow::Result<Mosquitto> {
        Self::start_conf(port, "").await
    }

    async fn start_conf(port: u16, extra_conf: &str) -> anyhow::Result<Mosquitto> {
        let bin = find_mosquitto().context(
            "mosquitto not found; install it with `apt-get install -y mosquitto` (Debian/Raspberry Pi OS)",
        )?;
        let dir = std::env::temp_dir().join(format!(
            "roomctl-mosquitto-{}-{port}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir)?;
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nset_tcp_nodelay true\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n{extra_conf}\n"
            ),
        )?;
        let mut cmd = Command::new(&bin);
        // Its own process group: Ctrl-C in a terminal reaches only roomctl,
        // which then stops the broker after its own orderly shutdown.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            // Opened here, not by mosquitto: as root it drops to its own
            // user, which could not create a file in our directory.
            // (stderr: unbuffered, so `running` is there as soon as it is true).
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("mosquitto.log"))?)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut m = Mosquitto {
            child: Some(child),
            port,
            dir,
        };
        m.wait_ready(Duration::from_secs(5)).await?;
        Ok(m)
    }

    /// Waits for *this* broker to listen. A TCP connect alone is not proof:
    /// when the port was taken meanwhile, it would reach someone else's
    /// broker. Mosquitto logs `running` only once its listener is bound.
    async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "mosquitto on port {} exited at start ({status}); log: {}",
                    self.port,
                    std::fs::read_to_string(self.log_path()).unwrap_or_default()
                );
            }
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            if log.contains("Error:") {
                bail!("mosquitto on port {} failed: {}", self.port, log.trim());
            }
            if log.contains(" running")
                && tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .is_ok()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "mosquitto on port {} did not start listening; log: {}",
                    self.port,
                    log.trim()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("mosquitto.log")
    }

    /// Its scratch directory (config, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// SIGKILL: the broker dies without closing anything cleanly.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The process is still alive.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fault injection for tests.
#[cfg(any(test, feature = "testkit"))]
impl Mosquitto {
    /// SIGSTOP: the broker keeps its sockets open but answers nothing (a
    /// hung broker, as opposed to a dead one).
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// The broker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGCONT after [`Mosquitto::freeze`].
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(c.id().to_string())
                .status();
        }
    }
}
