//! Just enough SVG charting for the HTML report: line charts with axes, grid, legend and a
//! tooltip per point, and horizontal bars on a time axis. Text is escaped; no script.

use std::fmt::Write as _;

/// Series colours, chosen to stay apart for common colour blindness.
pub(super) const PALETTE: [&str; 8] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442",
];

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 48.0;

/// One line of a chart.
#[derive(Debug, Clone)]
pub(super) struct Series {
    pub(super) name: String,
    pub(super) points: Vec<(f64, f64)>,
    /// Dashed, for a secondary statistic (a p99 beside a p50).
    pub(super) dashed: bool,
}

/// A line chart.
#[derive(Debug)]
pub(super) struct LineChart<'a> {
    pub(super) id: &'a str,
    pub(super) title: &'a str,
    pub(super) x_label: &'a str,
    pub(super) y_label: &'a str,
    pub(super) series: Vec<Series>,
    /// Where the legend goes: top right, or bottom right for curves that end high on the right
    /// (cumulative distributions).
    pub(super) legend_low: bool,
}

/// Escapes text for HTML and SVG content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Round tick positions covering `[low, high]`: steps of 1, 2 or 5 times a power of ten.
pub(super) fn ticks(low: f64, high: f64, target: usize) -> Vec<f64> {
    if !(low.is_finite() && high.is_finite()) || high <= low {
        return vec![low];
    }
    let raw = (high - low) / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (low / step).ceil() * step;
    (0..)
        .map(|i| first + i as f64 * step)
        .take_while(|v| *v <= high + step * 1e-9)
        .collect()
}

/// A number as a tick label: no more digits than it needs.
pub(super) fn label(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 {
        "0".to_owned()
    } else if magnitude >= 10_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    } else {
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

impl LineChart<'_> {
    /// The chart as an `<svg>` element, or a note when there is nothing to draw.
    pub(super) fn render(&self) -> String {
        let points: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        if points.is_empty() {
            return format!(
                "<p class=\"empty\" id=\"{}\">{}: nothing to draw (the benchmarks measured none of it)</p>",
                escape(self.id),
                escape(self.title)
            );
        }
        let (mut x_min, mut x_max) = bounds(points.iter().map(|p| p.0));
        let (_, mut y_max) = bounds(points.iter().map(|p| p.1));
        // Axes start at zero: a latency curve read from zero shows its knee honestly.
        x_min = x_min.min(0.0);
        let y_min = 0.0;
        if x_max <= x_min {
            x_max = x_min + 1.0;
        }
        if y_max <= y_min {
            y_max = y_min + 1.0;
        }
        let x_ticks = ticks(x_min, x_max * 1.05, 6);
        let y_ticks = ticks(y_min, y_max * 1.1, 5);
        let x_hi = x_ticks.last().copied().unwrap_or(x_max).max(x_max);
        let y_hi = y_ticks.last().copied().unwrap_or(y_max).max(y_max);
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let sx = |x: f64| LEFT + (x - x_min) / (x_hi - x_min) * plot_w;
        let sy = |y: f64| TOP + plot_h - (y - y_min) / (y_hi - y_min) * plot_h;

        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg class=\"chart\" id=\"{id}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{title}\" xmlns=\"http://www.w3.org/2000/svg\">\
             <title>{title}</title>\
             <text class=\"title\" x=\"{LEFT}\" y=\"20\">{title}</text>",
            id = escape(self.id),
            title = escape(self.title),
        );
        for y in &y_ticks {
            let py = sy(*y);
            let _ = write!(
                svg,
                "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\"/>\
                 <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                WIDTH - RIGHT,
                LEFT - 6.0,
                py + 4.0,
                label(*y)
            );
        }
        for x in &x_ticks {
            let px = sx(*x);
            let _ = write!(
                svg,
                "<line class=\"grid\" x1=\"{px:.1}\" y1=\"{TOP}\" x2=\"{px:.1}\" y2=\"{:.1}\"/>\
                 <text class=\"tick\" x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                TOP + plot_h,
                TOP + plot_h + 16.0,
                label(*x)
            );
        }
        let _ = write!(
            svg,
            "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{bottom:.1}\" x2=\"{right:.1}\" y2=\"{bottom:.1}\"/>\
             <line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom:.1}\"/>\
             <text class=\"label\" x=\"{cx:.1}\" y=\"{xl:.1}\" text-anchor=\"middle\">{x_label}</text>\
             <text class=\"label\" transform=\"translate(14 {cy:.1}) rotate(-90)\" text-anchor=\"middle\">{y_label}</text>",
            bottom = TOP + plot_h,
            right = WIDTH - RIGHT,
            cx = LEFT + plot_w / 2.0,
            xl = HEIGHT - 10.0,
            cy = TOP + plot_h / 2.0,
            x_label = escape(self.x_label),
            y_label = escape(self.y_label),
        );
        let mut colour = 0;
        for (i, series) in self.series.iter().enumerate() {
            // A dashed series shares the colour of the solid one before it; an empty series
            // keeps its colour, as in the legend, so later series keep theirs.
            if i > 0 && !series.dashed {
                colour += 1;
            }
            let finite: Vec<(f64, f64)> = series
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            if finite.is_empty() {
                continue;
            }
            let stroke = PALETTE[colour % PALETTE.len()];
            let path: Vec<String> = finite
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
                .collect();
            let dash = if series.dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            };
            let _ = write!(
                svg,
                "<g class=\"series\" data-name=\"{name}\"><polyline fill=\"none\" stroke=\"{stroke}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
                path.join(" "),
                name = escape(&series.name),
            );
            for (x, y) in &finite {
                let _ = write!(
                    svg,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{stroke}\"><title>{}: {} at {}</title></circle>",
                    sx(*x),
                    sy(*y),
                    escape(&series.name),
                    label(*y),
                    label(*x)
                );
            }
            svg.push_str("</g>");
        }
        let legend_top = if self.legend_low {
            TOP + plot_h - 8.0 - 14.0 * self.series.len() as f64
        } else {
            TOP + 4.0
        };
        svg.push_str(&legend(&self.series, legend_top));
        svg.push_str("</svg>");
        svg
    }
}

/// The legend, in the top right corner, one row per series.
fn legend(series: &[Series], top: f64) -> String {
    let mut out = String::new();
    let mut colour = 0;
    for (i, s) in series.iter().enumerate() {
        if i > 0 && !s.dashed {
            colour += 1;
        }
        let y = top + i as f64 * 14.0;
        let x = WIDTH - RIGHT - 150.0;
        let dash = if s.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<line x1=\"{x}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{}\" stroke-width=\"2\"{dash}/>\
             <text class=\"legend\" x=\"{}\" y=\"{}\">{}</text>",
            x + 18.0,
            PALETTE[colour % PALETTE.len()],
            x + 22.0,
            y + 4.0,
            escape(&s.name)
        );
    }
    out
}

/// One bar of a time line.
#[derive(Debug)]
pub(super) struct Span {
    pub(super) name: String,
    /// Seconds from the start of the run.
    pub(super) start: f64,
    pub(super) end: f64,
}

/// Horizontal bars on a shared time axis.
pub(super) fn timeline(id: &str, title: &str, spans: &[Span]) -> String {
    if spans.is_empty() {
        return format!(
            "<p class=\"empty\" id=\"{}\">{}: no benchmarks</p>",
            escape(id),
            escape(title)
        );
    }
    let row = 22.0;
    let height = TOP + BOTTOM + row * spans.len() as f64;
    let end = spans.iter().map(|s| s.end).fold(0.0, f64::max).max(1e-9);
    let x_ticks = ticks(0.0, end, 6);
    let hi = x_ticks.last().copied().unwrap_or(end).max(end);
    let left = 150.0;
    let plot_w = WIDTH - left - RIGHT;
    let sx = |t: f64| left + t / hi * plot_w;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" id=\"{id}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{title}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title>{title}</title><text class=\"title\" x=\"{left}\" y=\"20\">{title}</text>",
        id = escape(id),
        title = escape(title),
    );
    let bottom = height - BOTTOM;
    for t in &x_ticks {
        let px = sx(*t);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{px:.1}\" y1=\"{TOP}\" x2=\"{px:.1}\" y2=\"{bottom:.1}\"/>\
             <text class=\"tick\" x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 16.0,
            label(*t)
        );
    }
    for (i, span) in spans.iter().enumerate() {
        let y = TOP + i as f64 * row + 3.0;
        let x = sx(span.start.max(0.0));
        let w = (sx(span.end.max(span.start)) - x).max(1.0);
        let _ = write!(
            svg,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{name}</text>\
             <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{name}: {} s to {} s</title></rect>",
            left - 6.0,
            y + row * 0.6,
            row - 6.0,
            PALETTE[i % PALETTE.len()],
            label(span.start),
            label(span.end),
            name = escape(&span.name),
        );
    }
    let _ = write!(
        svg,
        "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">seconds since the run started</text></svg>",
        left + plot_w / 2.0,
        height - 10.0
    );
    svg
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0, 5), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.0, 0.9, 4), [0.0, 0.5]);
        let t = ticks(0.0, 1234.0, 6);
        assert_eq!(t[1], 500.0, "205 a step rounds up to 500");
        assert!(*t.last().unwrap() <= 1234.0 + 1e-9);
        assert_eq!(ticks(5.0, 5.0, 4), [5.0]);
    }

    #[test]
    fn text_is_escaped_everywhere() {
        let chart = LineChart {
            id: "c",
            title: "<script>alert(1)</script>",
            x_label: "x & y",
            y_label: "\"quoted\"",
            series: vec![Series {
                name: "<b>s</b>".to_owned(),
                points: vec![(1.0, 2.0), (2.0, f64::NAN)],
                dashed: false,
            }],
            legend_low: false,
        };
        let svg = chart.render();
        assert!(!svg.contains("<script>") && !svg.contains("<b>"));
        assert!(svg.contains("&lt;script&gt;") && svg.contains("x &amp; y"));
        assert_eq!(
            svg.matches("<circle").count(),
            1,
            "the NaN point is left out"
        );
    }

    #[test]
    fn a_chart_with_no_finite_point_says_so() {
        let chart = LineChart {
            id: "c",
            title: "ITL",
            x_label: "",
            y_label: "",
            series: vec![],
            legend_low: false,
        };
        assert!(chart.render().contains("nothing to draw"));
    }
}
