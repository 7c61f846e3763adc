//! The `keyward` binary as a child process: its output collected, its address read from stdout.
#![allow(dead_code)]

use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a node may take to say it listens, on a loaded machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a one-shot command (export, import, token create, …) may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
const LISTENING: &str = "keyward is listening on http://";

/// `keyward` with no environment at all but what the caller adds, run in `dir`: the test's own
/// variables (KEYWARD_REQUIRE_POSTGRES, …) must not leak into what a user would run.
pub fn keyward(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
    command.env_clear().current_dir(dir).stdin(Stdio::null()).kill_on_drop(true);
    command
}

/// Runs a one-shot command to its end.
pub async fn run(command: &mut Command) -> Output {
    let output = command.stdout(Stdio::piped()).stderr(Stdio::piped()).output();
    tokio::time::timeout(COMMAND_TIMEOUT, output)
        .await
        .unwrap_or_else(|_| panic!("{command:?} did not end within {COMMAND_TIMEOUT:?}"))
        .expect("the command runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `keyward serve`. Killed (SIGKILL) when dropped.
pub struct Node {
    child: Child,
    pub base_url: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Node {
    /// Starts `command` (a `keyward … serve`) and waits until it says where it listens.
    pub async fn serve(command: &mut Command) -> Node {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("keyward serve starts");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (lines, mut stdout_lines) = mpsc::unbounded_channel();
        let readers = vec![
            collect(child.stdout.take().expect("piped stdout"), stdout.clone(), Some(lines)),
            collect(child.stderr.take().expect("piped stderr"), stderr.clone(), None),
        ];
        let mut node = Node { child, base_url: String::new(), stdout, stderr, readers };
        let waited = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = stdout_lines.recv().await {
                if let Some(addr) = line.strip_prefix(LISTENING) {
                    return Some(format!("http://{}", addr.trim()));
                }
            }
            None
        })
        .await;
        match waited {
            Ok(Some(base_url)) => node.base_url = base_url,
            Ok(None) => {
                let status = node.child.wait().await.expect("the child's status");
                panic!("keyward serve ended ({status}) before listening:\n{}", node.output().await);
            }
            Err(_) => panic!("keyward serve did not listen within {START_TIMEOUT:?}:\n{}", node.output_so_far()),
        }
        node
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the node runs")
    }

    /// SIGTERM, as a service manager stops it, and its exit status.
    pub async fn terminate(&mut self) -> ExitStatus {
        let pid = self.pid().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let waited = tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await;
        let status = waited.unwrap_or_else(|_| panic!("keyward did not stop within 15 s of SIGTERM")).expect("status");
        self.finish_reading().await;
        status
    }

    /// SIGKILL: no shutdown of any kind.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL");
        self.finish_reading().await;
    }

    /// Everything written to stdout, then everything written to stderr (complete once stopped).
    pub fn output_so_far(&self) -> String {
        format!(
            "--- stdout ---\n{}--- stderr ---\n{}",
            self.stdout.lock().unwrap_or_else(|e| e.into_inner()),
            self.stderr.lock().unwrap_or_else(|e| e.into_inner())
        )
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn output(&mut self) -> String {
        self.finish_reading().await;
        self.output_so_far()
    }

    async fn finish_reading(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
        }
    }
}

/// Appends every line of `stream` to `into`, passing each on to `lines` when given.
fn collect(
    stream: impl AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<String>>,
    lines: Option<mpsc::UnboundedSender<String>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            {
                let mut all = into.lock().unwrap_or_else(|e| e.into_inner());
                all.push_str(&line);
                all.push('\n');
            }
            if let Some(lines) = &lines {
                let _ = lines.send(line);
            }
        }
    })
}
