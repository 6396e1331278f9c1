//! SIGINT / SIGTERM as a flag: the main loops poll it and then stop their
//! processes in order. A small tokio runtime on its own thread owns the handlers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, Result};

/// Set once SIGINT or SIGTERM has arrived.
#[derive(Clone)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn new() -> StopFlag {
        StopFlag(Arc::new(AtomicBool::new(false)))
    }
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
}

/// Installs the handlers; returns once they are in place. Later signals only set
/// the flag (a second Ctrl-C does not abort the orderly stop, which is bounded).
pub fn install() -> Result<StopFlag> {
    let flag = StopFlag::new();
    let f = flag.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::result::Result<(), String>>();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (mut int, mut term) = match (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) {
                    (Ok(i), Ok(t)) => (i, t),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                loop {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    f.set();
                }
            });
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(flag),
        Ok(Err(e)) => Err(anyhow!("cannot install signal handlers: {e}")),
        Err(_) => Err(anyhow!("cannot install signal handlers")),
    }
}
