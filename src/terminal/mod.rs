//! The local terminal, when a person sits at it: the line editor (what arrives is printed
//! above the line being typed) and `--raw` (every key goes to a remote terminal).
//!
//! Both change the terminal's modes, so both save them here first; [`restore`] puts them
//! back and is safe to call any number of times, from any path (the end of the run, an
//! error, a signal, a thread still blocked in the editor): nothing ever leaves the user's
//! terminal raw.

mod edit;
mod modes;
mod raw;

pub use edit::{start as edit, EditOptions};
pub use modes::restore;
pub use raw::{enter_raw, ESCAPE};
