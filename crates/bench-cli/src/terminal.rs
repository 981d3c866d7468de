//! The width of the terminal the summary table goes to, so that it fits: a 150-column table
//! wraps into noise on an 80-column terminal.

use std::os::fd::AsFd;

/// Columns of the terminal `stream` writes to; `None` when it is not a terminal (a file or a
/// pipe gets every column, so what a program reads does not depend on a window's size).
pub(crate) fn width(stream: impl AsFd) -> Option<usize> {
    let size = rustix::termios::tcgetwinsize(stream).ok()?;
    (size.ws_col > 0).then_some(usize::from(size.ws_col))
}
