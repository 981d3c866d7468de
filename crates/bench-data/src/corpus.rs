//! The text that synthetic prompts are cut from: plain English prose written for this project,
//! so prompts look like ordinary requests and the repository owns every word of them.

/// The corpus, paragraphs separated by blank lines.
pub(crate) const TEXT: &str = include_str!("../corpus/en.txt");
