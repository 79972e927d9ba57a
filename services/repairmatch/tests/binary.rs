//! The `repairmatch` binary as an operator runs it: `serve` until SIGTERM,
//! and `explain` beside a running server.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_repairmatch");

fn write_config(dir: &Path, sample: bool) -> std::path::PathBuf {
    let file = dir.join("repairmatch.toml");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[store]\npath = \"{}\"\nload_sample_when_empty = {sample}\n\
         sample_centers = 50\n\n[auth]\nallow_anonymous_find = true\n",
        dir.join("catalog.redb").display()
    );
    std::fs::write(&file, config).unwrap();
    file
}

/// A `repairmatch serve` process and the lines it logs, as they come.
struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Served {
    fn start(config: &Path) -> Self {
        let mut child = Command::new(BINARY)
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .env_remove("REPAIRMATCH_STORE__LOAD_SAMPLE_WHEN_EMPTY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let (send, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        Self { child, lines, seen: Vec::new() }
    }

    /// Waits (bounded) for a logged line containing `text`.
    fn wait_for(&mut self, text: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {text:?} within 60 s; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        self.seen.extend(self.lines.try_iter());
        // The reader thread ends with the pipe; collect what it still had.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        (status, self.seen)
    }
}

#[test]
fn sigterm_drains_once_and_exits_cleanly_and_a_sample_load_is_loud() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), true);
    let mut served = Served::start(&config);
    let sample = served.wait_for("catalog loaded");
    assert!(sample.contains("centers=50"), "{sample}");
    served.wait_for("serving gRPC");
    let (status, lines) = served.terminate();
    assert!(status.success(), "exit status {status}: {}", lines.join("\n"));
    let warnings: Vec<&String> = lines.iter().filter(|l| l.contains("SAMPLE catalog")).collect();
    assert_eq!(warnings.len(), 1, "loading invented centers is logged, loudly: {lines:#?}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    let draining = lines.iter().filter(|l| l.contains("draining")).count();
    assert_eq!(draining, 1, "one shutdown, one line: {lines:#?}");
}

#[test]
fn explain_beside_a_running_server_says_so_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), true);
    let mut served = Served::start(&config);
    served.wait_for("serving gRPC");
    let output = Command::new(BINARY)
        .args(["explain", "--config"])
        .arg(&config)
        .args(["--lat", "31.2304", "--lon", "121.4737", "--brand", "PAX"])
        .output()
        .unwrap();
    let (status, _) = served.terminate();
    assert!(status.success());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("a running server holds it: ask it with --server"), "{stderr}");
    let lock_error_mentions = stderr.matches("already open").count();
    assert_eq!(lock_error_mentions, 1, "the cause is printed once: {stderr}");
}
