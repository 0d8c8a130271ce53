//! `--progress`: bytes each way, the rate, and (when stdin is a regular file) percent and
//! ETA, on stderr: redrawn in place on a terminal, a line every 2 s otherwise, and a last
//! line with the totals when the transfer ends.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::pump::Counts;

/// How often a line is written when stderr is not a terminal.
const EVERY: Duration = Duration::from_secs(2);

/// The size of stdin when it is a regular file (what percent and ETA are of).
pub fn stdin_size() -> Option<u64> {
    let meta = crate::stdio::stdin_file().ok()?.metadata().ok()?;
    meta.is_file().then_some(meta.len())
}

fn mib(n: u64) -> f64 {
    n as f64 / 1_048_576.0
}

/// One progress line.
fn line(counts: &Counts, total: Option<u64>, elapsed: Duration, last: bool) -> String {
    let (sent, received) = (
        counts.sent.load(Ordering::Relaxed),
        counts.received.load(Ordering::Relaxed),
    );
    let secs = elapsed.as_secs_f64().max(1e-3);
    let rate = mib(sent + received) / secs;
    let share = match total {
        Some(t) if t > 0 => {
            let pct = (sent as f64 / t as f64 * 100.0).min(100.0);
            let eta = if last || sent >= t || sent == 0 {
                String::new()
            } else {
                let left = (t - sent) as f64 / (sent as f64 / secs);
                format!(", ETA {left:.0} s")
            };
            format!(" ({pct:.0}%{eta})")
        }
        _ => String::new(),
    };
    format!(
        "sent {:.1} MiB{share}, received {:.1} MiB, {rate:.1} MiB/s, {secs:.1} s",
        mib(sent),
        mib(received)
    )
}

/// A running progress display; [`Display::finish`] writes the totals.
pub struct Display {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    counts: Arc<Counts>,
    total: Option<u64>,
    started: Instant,
}

impl Display {
    /// Starts showing `counts`; `total` is what stdin holds, if known.
    pub fn start(counts: Arc<Counts>, total: Option<u64>) -> Display {
        let stop = CancellationToken::new();
        let started = Instant::now();
        let (c, s) = (counts.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let terminal = std::io::stderr().is_terminal();
            let tick = if terminal {
                Duration::from_millis(250)
            } else {
                EVERY
            };
            loop {
                tokio::select! {
                    () = tokio::time::sleep(tick) => {}
                    () = s.cancelled() => return,
                }
                let text = line(&c, total, started.elapsed(), false);
                let mut err = std::io::stderr().lock();
                let _ = if terminal {
                    // Redrawn in place: a line wider than the terminal would wrap, and the
                    // next redraw would leave its first part behind.
                    write!(err, "\r\x1b[2K{}", fit(&text, width()))
                } else {
                    writeln!(err, "{text}")
                };
                let _ = err.flush();
            }
        });
        Display {
            stop,
            task,
            counts,
            total,
            started,
        }
    }

    /// Stops the display and writes the last line (100% when stdin's size was known and
    /// all of it went).
    pub async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
        let text = line(&self.counts, self.total, self.started.elapsed(), true);
        let mut err = std::io::stderr().lock();
        let prefix = if err.is_terminal() { "\r\x1b[2K" } else { "" };
        let _ = writeln!(err, "{prefix}{text}");
    }
}

/// The width of the terminal on stderr, if it is one that says.
#[cfg(not(unix))]
fn width() -> Option<usize> {
    None
}

/// The width of the terminal on stderr, if it is one that says.
#[cfg(unix)]
fn width() -> Option<usize> {
    rustix::termios::tcgetwinsize(std::io::stderr())
        .ok()
        .map(|w| usize::from(w.ws_col))
        .filter(|w| *w > 0)
}

/// `text` cut to fit one row of `width` columns (one column kept free for the cursor).
fn fit(text: &str, width: Option<usize>) -> &str {
    match width {
        Some(w) if text.chars().count() >= w => {
            let end = text
                .char_indices()
                .nth(w.saturating_sub(1))
                .map_or(text.len(), |(i, _)| i);
            &text[..end]
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redrawn_line_fits_a_narrow_terminal() {
        let text = "sent 1.0 MiB (50%, ETA 1 s), received 0.0 MiB, 1.0 MiB/s, 1.0 s";
        assert_eq!(fit(text, Some(20)).chars().count(), 19);
        assert_eq!(fit(text, Some(200)), text);
        assert_eq!(fit(text, None), text);
    }

    #[test]
    fn lines_say_percent_and_eta_when_the_size_is_known() {
        let c = Counts::default();
        c.sent.store(512 * 1024, Ordering::Relaxed);
        let l = line(&c, Some(1024 * 1024), Duration::from_secs(1), false);
        assert!(
            l.starts_with("sent 0.5 MiB (50%, ETA 1 s), received 0.0 MiB"),
            "{l}"
        );
        c.sent.store(1024 * 1024, Ordering::Relaxed);
        let l = line(&c, Some(1024 * 1024), Duration::from_secs(2), true);
        assert!(l.starts_with("sent 1.0 MiB (100%), received"), "{l}");
        assert!(!line(&c, None, Duration::from_secs(1), true).contains('%'));
    }
}
