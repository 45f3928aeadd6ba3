//! What `tracing` writes, captured for a test to read.
//!
//! ```
//! use portcullis_testing::logs::LogCapture;
//!
//! let (answer, log) = LogCapture::during(|| {
//!     tracing::warn!(user = "dev@example.com", "a warning");
//!     42
//! });
//! assert_eq!(answer, 42);
//! assert!(log.contains("WARN") && log.contains("user=\"dev@example.com\""));
//! ```

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

/// A buffer that the `tracing` subscriber of [`subscriber`](Self::subscriber)
/// writes into (plain text, no colours, `INFO` and above); clones share it.
#[derive(Clone, Debug, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// A subscriber writing into this capture, to set as the default while
    /// the code under test runs (`tracing::subscriber::set_default`).
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish()
    }

    /// What was written so far.
    pub fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .map_or_else(|e| e.into_inner().clone(), |b| b.clone());
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Runs `f` with a capture as this thread's subscriber; its answer and
    /// what it logged.
    pub fn during<R>(f: impl FnOnce() -> R) -> (R, String) {
        let capture = Self::new();
        let answer = tracing::subscriber::with_default(capture.subscriber(), f);
        (answer, capture.text())
    }

    /// Awaits `future` with a capture as this thread's subscriber (a
    /// current-thread runtime, as `#[tokio::test]`'s default, keeps the
    /// whole future on it); its output and what it logged.
    pub async fn during_async<F: Future>(future: F) -> (F::Output, String) {
        let capture = Self::new();
        let guard = tracing::subscriber::set_default(capture.subscriber());
        let output = future.await;
        drop(guard);
        (output, capture.text())
    }
}

impl io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("the log capture's lock is poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
