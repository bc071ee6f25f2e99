//! Progress of long steps (a first snapshot of a large database, a dump to a file, a restore,
//! a verify, a push), drawn on stderr only when it is a terminal and `--quiet` is off: cron
//! mails and pipes never see a meter. Library code reports progress through [`Progress`]; it
//! never prints.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use crate::dump::Sink;

/// A progress meter, or nothing when no one can see it. Cleared when dropped.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A meter of bytes with no known total (a spinner with the count and rate).
    pub fn bytes(label: &str) -> Progress {
        Progress::make(
            label,
            None,
            "{spinner} {msg}: {bytes} ({bytes_per_sec}, {elapsed})",
        )
    }

    /// A spinner with the time spent, for a step whose size is not known (a push by git).
    pub fn spinner(label: &str) -> Progress {
        Progress::make(label, None, "{spinner} {msg} ({elapsed})")
    }

    /// A meter of `total` items (objects pushed, …).
    pub fn items(label: &str, total: u64) -> Progress {
        Progress::make(
            label,
            Some(total),
            "{msg}: [{bar:30}] {pos}/{len} ({elapsed})",
        )
    }

    /// Nothing shown.
    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    fn make(label: &str, total: Option<u64>, template: &str) -> Progress {
        if !visible() {
            return Progress::hidden();
        }
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        bar.set_draw_target(if console_sees_a_terminal() {
            ProgressDrawTarget::stderr_with_hz(4)
        } else {
            // A terminal that says it is dumb (TERM=dumb, or unset): a carriage return still
            // works there, cursor movement does not.
            ProgressDrawTarget::term_like_with_hz(Box::new(PlainStderr), 4)
        });
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(250));
        bar.tick(); // drawn at once, however short the step
        Progress { bar: Some(bar) }
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    pub fn set(&self, pos: u64, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
            b.set_position(pos);
        }
    }

    /// Remove the meter (the result is said by the caller).
    pub fn finish(&self) {
        if let Some(b) = &self.bar
            && !b.is_finished()
        {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Whether a meter can be seen: stderr is a terminal and `--quiet` is off.
pub fn visible() -> bool {
    std::io::stderr().is_terminal() && !crate::say::quiet()
}

fn console_sees_a_terminal() -> bool {
    !matches!(std::env::var("TERM").as_deref(), Err(_) | Ok("dumb"))
}

/// Drawing with `\r` alone.
#[derive(Debug)]
struct PlainStderr;

impl TermLike for PlainStderr {
    fn width(&self) -> u16 {
        80
    }
    fn move_cursor_up(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        writeln!(io::stderr(), "{s}")
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        write!(io::stderr(), "{s}")
    }
    fn clear_line(&self) -> io::Result<()> {
        write!(io::stderr(), "\r{:79}\r", "")
    }
    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// A dump sink that moves a meter by the bytes passing through it.
pub struct Counted<'a> {
    pub inner: &'a mut dyn Sink,
    pub progress: &'a Progress,
}

impl Sink for Counted<'_> {
    fn file(&mut self, path: &[&str], data: Vec<u8>) -> Result<()> {
        self.progress.inc(data.len() as u64);
        self.inner.file(path, data)
    }

    fn reuse(&mut self, path: &[&str], oid: git2::Oid, dir: bool, bytes: u64) -> Result<()> {
        self.progress.inc(bytes);
        self.inner.reuse(path, oid, dir, bytes)
    }
}
