//! The `repairmatch` binary as an operator runs it: `serve` until SIGTERM,
//! and `explain` beside a running server.

mod support;

use std::path::Path;
use std::process::Command;

use support::{BINARY, Replica};

fn write_config(dir: &Path, sample: bool) -> std::path::PathBuf {
    let file = dir.join("repairmatch.toml");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_pause_ms = 0\n\n[store]\npath = \"{}\"\nload_sample_when_empty = {sample}\n\
         sample_centers = 50\n\n[auth]\nallow_anonymous_find = true\n",
        dir.join("catalog.redb").display()
    );
    std::fs::write(&file, config).unwrap();
    file
}

#[test]
fn sigterm_drains_once_and_exits_cleanly_and_a_sample_load_is_loud() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), true);
    let mut served = Replica::start(&config);
    let sample = served.wait_for("catalog loaded");
    assert!(sample.contains("centers=50"), "{sample}");
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
    let served = Replica::start(&config);
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
