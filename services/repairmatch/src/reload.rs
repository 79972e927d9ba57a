//! Live configuration: the service reloads its config file when the file's
//! directory changes (a Kubernetes ConfigMap update swaps the `..data`
//! symlink there, so watching the file itself would miss it; a `subPath`
//! mount never updates at all) and on SIGHUP.
//!
//! A new file is validated whole before it is swapped in; a bad one is
//! refused with every problem located (file, key, why), and the old config
//! keeps serving. See [`crate::App::reload_from`].

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use crate::App;

/// Keeps the watch alive; dropping it stops watching.
#[derive(Debug)]
pub struct ConfigWatcher {
    _watcher: RecommendedWatcher,
}

/// How long a burst of file events (a ConfigMap swap is several) settles
/// before the file is read.
const SETTLE: Duration = Duration::from_millis(100);

/// Reloads `path` into `app` whenever its directory changes.
pub fn watch(app: App, path: PathBuf) -> notify::Result<ConfigWatcher> {
    let (events, received) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = events.send(event);
    })?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    watcher.watch(&directory, RecursiveMode::NonRecursive)?;
    std::thread::Builder::new()
        .name("config-watch".into())
        .spawn(move || {
            // Ends when the watcher (and with it the sender) is dropped.
            while received.recv().is_ok() {
                std::thread::sleep(SETTLE);
                while received.try_recv().is_ok() {}
                reload_logged(&app, &path);
            }
        })
        .map_err(notify::Error::io)?;
    Ok(ConfigWatcher { _watcher: watcher })
}

/// Reloads on SIGHUP until the process ends.
#[cfg(unix)]
pub fn reload_on_sighup(app: App, path: PathBuf) -> std::io::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let (app, path) = (app.clone(), path.clone());
            let _ = tokio::task::spawn_blocking(move || reload_logged(&app, &path)).await;
        }
    });
    Ok(())
}

fn reload_logged(app: &App, path: &Path) {
    match app.reload_from(path) {
        Ok(Some(version)) => tracing::info!(file = %path.display(), version, "configuration reloaded"),
        Ok(None) => tracing::debug!(file = %path.display(), "configuration unchanged"),
        Err(problems) => tracing::error!(
            file = %path.display(),
            problems = %problems.join("; "),
            refused_reloads = app.config_reloads_refused(),
            "configuration refused; the previous one keeps serving"
        ),
    }
}
