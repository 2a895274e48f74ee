//! A one-line spinner with the time left, for waits on a person (the browser, a device code).
//! The CLI shows it only when stderr is a terminal (and `TERM` is not `dumb`), in colour only
//! without `NO_COLOR`, and not after asking the user to paste a redirect URL (plain lines then,
//! so nothing draws over the paste). Each frame redraws the line in place at a fixed width and
//! does not clear the rest of it, so text typed on that line anyway stays visible until Enter.

use std::io::Write as _;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const TICK: Duration = Duration::from_millis(100);

/// A running spinner; it stops and clears its line when dropped.
pub(crate) struct Spinner {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    /// Starts drawing `label` and the time left until `deadline` on stderr.
    pub(crate) fn start(label: String, deadline: Instant, colour: bool) -> Spinner {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            for frame in FRAMES.iter().cycle() {
                let left = deadline.saturating_duration_since(Instant::now());
                let _ = write!(
                    std::io::stderr().lock(),
                    "\r{}",
                    line(frame, &label, left, colour)
                );
                match stopped.recv_timeout(TICK) {
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        });
        Spinner {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One frame: `⠋ label  4:59 left ` (the same width every time for the same label).
fn line(frame: &str, label: &str, left: Duration, colour: bool) -> String {
    let secs = left.as_millis().div_ceil(1000);
    let frame = if colour {
        format!("\x1b[36m{frame}\x1b[0m")
    } else {
        frame.to_string()
    };
    format!("{frame} {label} {:>3}:{:02} left ", secs / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_show_minutes_and_seconds_left_at_a_fixed_width() {
        let a = line("⠋", "Waiting", Duration::from_secs(299), false);
        let b = line("⠙", "Waiting", Duration::from_millis(4001), false);
        assert!(b.contains("0:05 left"), "{b}");
        assert_eq!(a, "⠋ Waiting   4:59 left ");
        assert_eq!(a.chars().count(), b.chars().count());
        assert!(line("⠋", "W", Duration::ZERO, true).contains("\x1b[36m"));
        assert!(!line("⠋", "W", Duration::ZERO, false).contains('\x1b'));
    }
}
