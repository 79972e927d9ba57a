//! The real `repairmatch` binary on bad configs: `config check` and `serve`
//! report every problem in one run, each by its key path, and exit 1.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Seven problems of every kind: unknown keys in two sections, a wrong type,
/// a negative weight, a bad decay, an unknown role and a bad key hash.
const SEVEN_PROBLEMS: &str = include_str!("fixtures/seven-problems.toml");

const SEVEN_KEYS: [&str; 7] = [
    "profiles.nearest.distance_decay.decay: ",
    "profiles.nearest.weights.distance: ",
    "server.lisen: ",
    "server.listen: ",
    "store.pth: ",
    "tenants.icbc.key_sha256[0]: ",
    "tenants.who.role: ",
];

/// Runs the binary with no `REPAIRMATCH_*` variables but `env`. A config
/// wrongly accepted would have `serve` run on: that fails too, after a
/// generous wait, rather than hanging the tests.
fn repairmatch(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_repairmatch"));
    command.args(args).env("RUST_LOG", "off").stdout(Stdio::piped()).stderr(Stdio::piped());
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("REPAIRMATCH_")) {
        command.env_remove(name);
    }
    let mut child = command.envs(env.iter().copied()).spawn().expect("the binary runs");
    let started = Instant::now();
    while child.try_wait().expect("the binary is waited for").is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().expect("the binary stops");
            panic!("repairmatch {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("the binary's output")
}

fn write(dir: &Path, contents: &str) -> String {
    let file = dir.join("repairmatch.toml");
    std::fs::write(&file, contents).unwrap();
    file.display().to_string()
}

#[test]
fn config_check_reports_every_problem_at_once_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), SEVEN_PROBLEMS);
    let output = repairmatch(&["config", "check", &file], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let mut lines = stderr.lines();
    assert_eq!(lines.next(), Some(format!("{file}: refused").as_str()), "{stderr}");
    let problems: Vec<&str> = lines.map(str::trim_start).collect();
    assert_eq!(problems.len(), SEVEN_KEYS.len(), "{stderr}");
    for (key, problem) in SEVEN_KEYS.iter().zip(&problems) {
        assert!(problem.starts_with(key), "{problem:?} should start with {key:?}\n{stderr}");
    }
    assert!(problems.iter().all(|p| !p.starts_with("default.")), "{stderr}");
}

#[test]
fn config_check_names_the_environment_variable_behind_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "[server]\nlisten = \"127.0.0.1:50051\"\n");
    let env = [("REPAIRMATCH_SERVER__LISTEN", "nowhere"), ("REPAIRMATCH_SERVER__LISEN", "1")];
    let output = repairmatch(&["config", "check", &file], &env);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("server.lisen: unknown key; known keys here: listen, ")
            && stderr.contains("(from environment variable REPAIRMATCH_SERVER__LISEN)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "server.listen: invalid socket address syntax (from environment variable REPAIRMATCH_SERVER__LISTEN)"
        ),
        "{stderr}"
    );
}

#[test]
fn config_check_layers_files_as_serve_does_and_env_vars_can_make_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "[profiles.nearest]\nweights = { distance = 1.0 }\n");
    let tenants = dir.path().join("tenants.toml");
    let hash = "b".repeat(64);
    let tenant = format!("[tenants.icbc]\nrole = \"bank\"\nprofiles = [\"nearest\"]\nkey_sha256 = [\"{hash}\"]\n");
    std::fs::write(&tenants, tenant).unwrap();
    let tenants = tenants.display().to_string();
    let alone = repairmatch(&["config", "check", &tenants], &[]);
    assert_eq!(alone.status.code(), Some(1), "alone, the tenants file names a profile nobody defines");
    let layered = repairmatch(&["config", "check", &main, &tenants], &[]);
    let stdout = String::from_utf8(layered.stdout).unwrap();
    assert_eq!(layered.status.code(), Some(0), "{}", String::from_utf8_lossy(&layered.stderr));
    assert!(stdout.starts_with(&format!("{main} + {tenants}: ok (2 profiles, 1 tenants)")), "{stdout}");

    // [server.tls] from the environment alone (a Deployment's env): the
    // table is made, and its files are checked.
    let env = [
        ("REPAIRMATCH_SERVER__TLS__CERT_FILE", "/nonexistent/tls.crt"),
        ("REPAIRMATCH_SERVER__TLS__KEY_FILE", "/nonexistent/tls.key"),
    ];
    let output = repairmatch(&["config", "check", &main], &env);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("server.tls.cert_file: /nonexistent/tls.crt is not a readable file"), "{stderr}");
    assert!(stderr.contains("server.tls.key_file: /nonexistent/tls.key is not a readable file"), "{stderr}");
}

#[test]
fn config_check_passes_the_shipped_config() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/repairmatch.toml");
    let output = repairmatch(&["config", "check", &shipped.display().to_string()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8(output.stdout).unwrap().contains(": ok ("));
}

#[test]
fn a_refused_start_reports_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), SEVEN_PROBLEMS);
    let output = repairmatch(&["serve", "--config", &file], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    for key in SEVEN_KEYS {
        assert!(stderr.contains(&format!("  {key}")), "{key:?} missing from\n{stderr}");
    }
}
