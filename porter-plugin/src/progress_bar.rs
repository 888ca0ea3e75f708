//! Progress bars on stderr for interactive use; nothing at all when stderr is not a terminal or
//! the user asked for quiet. The bars use no colour.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use porter_core::digest::Digest;
use porter_core::progress::{NoProgress, Progress, Wait};

/// Bars when `enabled` (see `output::Ui`); otherwise only waits for another pull are reported,
/// one line each on stderr, unless `quiet`.
pub fn reporter(enabled: bool, quiet: bool) -> Box<dyn Progress> {
    match (enabled, quiet) {
        (true, _) => Box::new(Bars::default()),
        (false, false) => Box::new(Lines),
        (false, true) => Box::new(NoProgress),
    }
}

/// One line saying why a pull waits for another one, or stops waiting.
pub fn waiting_text(digest: &Digest, wait: Wait) -> String {
    let holder = |pid: Option<u32>| pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    match wait {
        Wait::Started { holder: pid } => {
            format!("waiting for another pull of {digest}{}", holder(pid))
        }
        Wait::GaveUp { holder: pid } => format!(
            "another pull of {digest}{} made no progress; downloading it here",
            holder(pid)
        ),
        _ => String::new(),
    }
}

/// Without bars: only the waits, as lines.
struct Lines;

impl Progress for Lines {
    fn blob_waiting(&self, digest: &Digest, wait: Wait) {
        eprintln!("{}", waiting_text(digest, wait));
    }
}

/// One bar per blob.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
}

impl Default for Bars {
    fn default() -> Self {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::default(),
        }
    }
}

impl Progress for Bars {
    fn blob_started(&self, digest: &Digest, size: u64, title: Option<&str>) {
        let style = ProgressStyle::with_template(
            "{msg:20!} {bar:30} {bytes:>10}/{total_bytes:10} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = self.multi.add(ProgressBar::new(size).with_style(style));
        bar.set_message(title.map_or_else(|| digest.short_id().to_owned(), str::to_owned));
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(digest.clone(), bar);
        }
    }

    fn blob_progress(&self, digest: &Digest, bytes: u64) {
        if let Some(bar) = self.bars.lock().ok().and_then(|b| b.get(digest).cloned()) {
            bar.inc(bytes);
        }
    }

    fn blob_done(&self, digest: &Digest, _reused: bool) {
        if let Some(bar) = self.bars.lock().ok().and_then(|mut b| b.remove(digest)) {
            bar.finish_and_clear();
        }
    }

    fn blob_waiting(&self, digest: &Digest, wait: Wait) {
        let _ = self.multi.println(waiting_text(digest, wait));
    }
}
