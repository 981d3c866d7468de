//! The time line of a run: one bar per benchmark's measured window on a shared time axis.
//! Drawn in HTML, not SVG, so that it spans its card at any width while its text keeps its
//! size (an SVG scaled to a wide card would blow its labels up, and shrink them on a phone).

use std::fmt::Write as _;

use super::svg::{escape, label, ticks, PALETTE};

/// One bar.
#[derive(Debug)]
pub(super) struct Span {
    pub(super) name: String,
    /// Seconds from the start of the run.
    pub(super) start: f64,
    pub(super) end: f64,
}

/// CSS of the time line.
pub(super) const STYLE: &str = "
.tl{display:grid;grid-template-columns:minmax(0,max-content) minmax(0,1fr);gap:4px 10px;align-items:center;font-size:.82em}
.tl .name{color:#57606a;text-align:right;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:14em}
.tl .track{position:relative;height:16px;background:#f6f8fa;border-radius:3px}
.tl .bar{position:absolute;top:0;bottom:0;min-width:2px;border-radius:3px;background:var(--c)}
.tl .axis{position:relative;height:1.4em;border-top:1px solid #57606a}
.tl .axis span{position:absolute;top:2px;transform:translateX(-50%);color:#57606a}
.tl .axis span:first-child{transform:none}.tl .axis span.last{transform:translateX(-100%)}
.tl-label{text-align:center;font-size:.85em;margin:2px 0 0;color:#1b1f24}
";

/// The time line in its card, or a note when there are no benchmarks.
pub(super) fn html(id: &str, title: &str, spans: &[Span]) -> String {
    let mut out = format!(
        "<figure class=\"card\" id=\"{}\"><figcaption>{}</figcaption>",
        escape(id),
        escape(title)
    );
    if spans.is_empty() {
        out.push_str("<p class=\"empty\">no benchmarks</p></figure>");
        return out;
    }
    let end = spans.iter().map(|s| s.end).fold(0.0, f64::max).max(1e-9);
    let axis = ticks(0.0, end, 6);
    let hi = axis.last().copied().unwrap_or(end).max(end);
    let at = |t: f64| 100.0 * t.clamp(0.0, hi) / hi;
    out.push_str("<div class=\"tl\">");
    for (i, span) in spans.iter().enumerate() {
        let (start, end) = (span.start.max(0.0), span.end.max(span.start));
        let _ = write!(
            out,
            "<span class=\"name\">{name}</span><span class=\"track\"><span class=\"bar c{}\" style=\"left:{:.2}%;width:{:.2}%\" title=\"{name}: {} s to {} s\"></span></span>",
            i % PALETTE.len(),
            at(start),
            at(end) - at(start),
            label(start),
            label(end),
            name = escape(&span.name),
        );
    }
    out.push_str("<span></span><span class=\"axis\">");
    for (i, t) in axis.iter().enumerate() {
        let _ = write!(
            out,
            "<span{} style=\"left:{:.2}%\">{}</span>",
            if i + 1 == axis.len() && i > 0 {
                " class=\"last\""
            } else {
                ""
            },
            at(*t),
            label(*t)
        );
    }
    out.push_str("</span></div><p class=\"tl-label\">seconds since the run started</p></figure>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_sit_at_their_share_of_the_axis_and_name_their_seconds() {
        let spans = [
            Span {
                name: "#1 <a>".to_owned(),
                start: 0.0,
                end: 2.5,
            },
            Span {
                name: "#2".to_owned(),
                start: 5.0,
                end: 10.0,
            },
        ];
        let page = html("timeline", "windows", &spans);
        assert!(
            page.contains("style=\"left:0.00%;width:25.00%\" title=\"#1 &lt;a&gt;: 0 s to 2.5 s\"")
        );
        assert!(page.contains("style=\"left:50.00%;width:50.00%\" title=\"#2: 5 s to 10 s\""));
        assert!(!page.contains("<a>"));
        assert!(html("t", "w", &[]).contains("no benchmarks"));
    }
}
