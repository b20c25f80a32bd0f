//! Hot reload: watches the games folder and reloads what changed.
//!
//! The watch is on the *directory*, recursively: editors save by writing a
//! temporary file and renaming it over the original, which a watch on the file
//! itself would miss. A 200 ms debounce folds one save into one reload.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::event::ModifyKind;
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::catalog::Catalog;

/// Debounce window; a save becomes live within this plus a reload (well under 300 ms).
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Keeps the watcher alive; dropping it stops hot reload.
pub struct GamesWatcher {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
}

/// Starts watching `catalog`'s folder; reloads run on a tokio task until `shutdown`.
pub fn watch(catalog: Arc<Catalog>, shutdown: CancellationToken) -> notify::Result<GamesWatcher> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<PathBuf>>();
    let mut debouncer = new_debouncer(
        DEBOUNCE,
        Some(Duration::from_millis(50)),
        move |result: DebounceEventResult| match result {
            Ok(events) => {
                // Only changes: reading a file (an editor, `cat`, or another
                // node's reload of a shared folder) raises access events too,
                // and reacting to them would reload forever.
                let paths: Vec<PathBuf> = events
                    .into_iter()
                    .filter(|e| {
                        matches!(
                            e.event.kind,
                            EventKind::Create(_)
                                | EventKind::Remove(_)
                                | EventKind::Modify(ModifyKind::Data(_))
                                | EventKind::Modify(ModifyKind::Name(_))
                                | EventKind::Modify(ModifyKind::Any)
                        )
                    })
                    .flat_map(|e| e.event.paths)
                    .collect();
                if !paths.is_empty() {
                    let _ = tx.send(paths);
                }
            }
            Err(errors) => {
                for e in errors {
                    tracing::warn!(error = %e, "games folder watch error");
                }
            }
        },
    )?;
    debouncer.watch(catalog.dir(), RecursiveMode::Recursive)?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                batch = rx.recv() => {
                    let Some(paths) = batch else { break };
                    let catalog = catalog.clone();
                    // Validation runs Lua; keep it off the async workers.
                    let _ = tokio::task::spawn_blocking(move || {
                        catalog.reload_paths(paths.iter().map(PathBuf::as_path))
                    })
                    .await;
                }
            }
        }
    });
    Ok(GamesWatcher {
        _debouncer: debouncer,
    })
}
