//! Live configuration: the service reloads its config files when a file's
//! directory changes (a Kubernetes ConfigMap update swaps the `..data`
//! symlink there, so watching the file itself would miss it; a `subPath`
//! mount never updates at all) and on SIGHUP.
//!
//! Only events that can change what the file says start a reload: writes,
//! creations, renames and removals. Reading the file raises open and close
//! events in its directory too, and reacting to those made every reload set
//! off the next one. Bursts of events (a ConfigMap swap is several) are
//! debounced into one read, and a file whose bytes are those of the previous
//! attempt is not loaded again: a refused file counts one refusal however
//! often it is seen, and an idle service reads nothing.
//!
//! A new file is validated whole before it is swapped in; a bad one is
//! refused with every problem located (file, key, why), and the old config
//! keeps serving. See [`crate::App::reload_from`].

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, DebouncedEvent, Debouncer, RecommendedCache, new_debouncer};

use crate::App;
use crate::config::describe_files;

/// How long a directory must stay still before the file is read: long enough
/// to cover a ConfigMap swap or an editor's save, short for a human.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// Keeps a watch on some directories alive; dropping it stops watching.
#[derive(Debug)]
pub struct DirectoryWatch {
    /// Always `Some` until dropped.
    debouncer: Option<Debouncer<RecommendedWatcher, RecommendedCache>>,
}

impl Drop for DirectoryWatch {
    fn drop(&mut self) {
        // Waits (a debounce tick at most) for the debouncer's thread, which
        // holds whatever the callback holds (the app): once the watch is
        // gone, so is every reload, and the store can be opened again.
        if let Some(debouncer) = self.debouncer.take() {
            debouncer.stop();
        }
    }
}

/// Calls `on_change` (on the watcher's own thread) whenever something in the
/// directory of any of `files` may have changed what a file there says.
/// Directories, not files: a Kubernetes ConfigMap or Secret update swaps a
/// symlink beside the file and never touches the file itself.
pub fn watch_directories(files: &[PathBuf], on_change: impl Fn() + Send + 'static) -> notify::Result<DirectoryWatch> {
    let mut directories: Vec<PathBuf> = files
        .iter()
        .map(|file| match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        })
        .collect();
    directories.sort();
    directories.dedup();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| match result {
        Ok(events) if events.iter().any(may_change_content) => on_change(),
        Ok(_) => {}
        Err(errors) => {
            for error in errors {
                tracing::warn!(%error, "watching a configuration directory");
            }
        }
    })?;
    for directory in &directories {
        debouncer.watch(directory, RecursiveMode::NonRecursive)?;
    }
    Ok(DirectoryWatch { debouncer: Some(debouncer) })
}

/// Keeps the config watch alive; dropping it stops watching.
#[derive(Debug)]
pub struct ConfigWatcher {
    _watch: DirectoryWatch,
    reloader: Reloader,
}

impl ConfigWatcher {
    /// Also reloads on SIGHUP until the process ends, sharing the watcher's
    /// memory of the last files read, so a change both paths see counts once.
    #[cfg(unix)]
    pub fn reload_on_sighup(&self) -> io::Result<()> {
        self.reloader.clone().reload_on_sighup()
    }
}

/// Reloads the layered config `files` into `app` whenever one's directory
/// changes.
pub fn watch(app: App, files: Vec<PathBuf>) -> notify::Result<ConfigWatcher> {
    let reloader = Reloader::new(app, files);
    let on_change = reloader.clone();
    let watch = watch_directories(&reloader.files, move || on_change.reload(Trigger::FileChange))?;
    Ok(ConfigWatcher { _watch: watch, reloader })
}

/// Reloads on SIGHUP until the process ends: for a service that does not
/// watch its files. With a watcher, use [`ConfigWatcher::reload_on_sighup`].
#[cfg(unix)]
pub fn reload_on_sighup(app: App, files: Vec<PathBuf>) -> io::Result<()> {
    Reloader::new(app, files).reload_on_sighup()
}

/// Whether an event in the config file's directory may have changed what the
/// file says. Any file there counts, not only the config's name: the name may
/// be a symlink into the directory (`..data/repairmatch.toml`), and reading an
/// unchanged file costs less than missing a change.
fn may_change_content(event: &DebouncedEvent) -> bool {
    // Opening, reading and closing after a read are what a reload itself
    // causes; metadata (chmod, touch) leaves the bytes alone. Closing after a
    // write counts: a write through a memory map raises nothing else.
    event.need_rescan()
        || matches!(
            event.kind,
            EventKind::Any
                | EventKind::Create(_)
                | EventKind::Remove(_)
                | EventKind::Modify(ModifyKind::Any | ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Other)
                | EventKind::Access(AccessKind::Close(AccessMode::Write))
        )
}

/// What made the service read its file, for the logs.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    FileChange,
    Hangup,
}

/// A read of each config file: its bytes, or why there are none.
type FilesRead = Vec<Result<Vec<u8>, io::ErrorKind>>;

/// Reads the files and reloads them when their bytes differ from the last
/// attempt.
#[derive(Debug, Clone)]
struct Reloader {
    app: App,
    files: Arc<[PathBuf]>,
    /// The files as read by the last attempt (or why one could not be read);
    /// `None` until the first, so the first event always loads. The lock also
    /// keeps the watcher and SIGHUP from reloading at once.
    last_read: Arc<Mutex<Option<FilesRead>>>,
}

impl Reloader {
    fn new(app: App, files: Vec<PathBuf>) -> Self {
        Self { app, files: files.into(), last_read: Arc::default() }
    }

    #[cfg(unix)]
    fn reload_on_sighup(self) -> io::Result<()> {
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let reloader = self.clone();
                let _ = tokio::task::spawn_blocking(move || reloader.reload(Trigger::Hangup)).await;
            }
        });
        Ok(())
    }

    fn reload(&self, trigger: Trigger) {
        let mut last_read = self.last_read.lock().unwrap_or_else(PoisonError::into_inner);
        let read: FilesRead = self.files.iter().map(|file| std::fs::read(file).map_err(|error| error.kind())).collect();
        if last_read.as_ref() == Some(&read) {
            let files = describe_files(&self.files);
            match trigger {
                Trigger::Hangup => tracing::info!(%files, ?trigger, "configuration unchanged"),
                Trigger::FileChange => tracing::debug!(%files, ?trigger, "configuration unchanged"),
            }
        } else {
            // `reload_from` reads the file again: should it have changed in
            // between, the change raises another event, and that read differs
            // from this one, so nothing is missed.
            *last_read = Some(read);
            self.log(trigger, self.app.reload_from(&self.files));
        }
        // Counted once the attempt is over, so whoever sees the count can rely
        // on its outcome.
        self.app.metrics().config_reload_attempts.inc();
    }

    fn log(&self, trigger: Trigger, outcome: Result<Option<u64>, Vec<String>>) {
        let file = describe_files(&self.files);
        match outcome {
            Ok(Some(version)) => tracing::info!(%file, ?trigger, version, "configuration reloaded"),
            Ok(None) => tracing::info!(%file, ?trigger, "configuration reloaded, nothing changed"),
            Err(problems) => tracing::error!(
                %file,
                ?trigger,
                problems = %problems.join("; "),
                refused_reloads = self.app.config_reloads_refused(),
                "configuration refused; the previous one keeps serving"
            ),
        }
    }
}
