//! Small inline SVG charts for the monthly report (no scripts, no external files).

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 640.0;
const H: f64 = 180.0;
const PAD: f64 = 32.0;

/// Bars with labels under the first and last.
pub fn bars(title: &str, labels: &[String], values: &[f64], unit: &str) -> String {
    let max = values.iter().cloned().fold(0.0, f64::max).max(1e-9);
    let n = values.len().max(1) as f64;
    let bw = (W - 2.0 * PAD) / n;
    let mut out = format!(
        "<svg role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {W} {H}\" width=\"100%\"><title>{}</title>",
        esc(title),
        esc(title)
    );
    for (i, v) in values.iter().enumerate() {
        let h = v / max * (H - 2.0 * PAD);
        out.push_str(&format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2a6fb0\"><title>{}: {v:.0}{unit}</title></rect>",
            PAD + i as f64 * bw + 1.0,
            H - PAD - h,
            (bw - 2.0).max(1.0),
            h,
            esc(labels.get(i).map(String::as_str).unwrap_or(""))
        ));
    }
    axis(&mut out, labels, &format!("{max:.0}{unit}"));
    out.push_str("</svg>");
    out
}

/// Lines, one per series (name, values), over the same labels.
pub fn lines(title: &str, labels: &[String], series: &[(&str, Vec<f64>)], unit: &str) -> String {
    let colors = ["#2a6fb0", "#c2410c", "#15803d", "#7c3aed"];
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().cloned())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        .max(1e-9);
    let n = labels.len().max(2) as f64 - 1.0;
    let mut out = format!(
        "<svg role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {W} {H}\" width=\"100%\"><title>{}</title>",
        esc(title),
        esc(title)
    );
    for (k, (name, values)) in series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| {
                format!(
                    "{:.1},{:.1}",
                    PAD + i as f64 / n * (W - 2.0 * PAD),
                    H - PAD - v / max * (H - 2.0 * PAD)
                )
            })
            .collect();
        let color = colors[k % colors.len()];
        out.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
            points.join(" "),
            esc(name)
        ));
        out.push_str(&format!(
            "<text x=\"{:.0}\" y=\"{:.0}\" font-size=\"11\" fill=\"{color}\">{}</text>",
            W - PAD - 120.0,
            14.0 + 13.0 * k as f64,
            esc(name)
        ));
    }
    axis(&mut out, labels, &format!("{max:.2}{unit}"));
    out.push_str("</svg>");
    out
}

fn axis(out: &mut String, labels: &[String], top: &str) {
    out.push_str(&format!(
        "<line x1=\"{PAD}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#555\"/>",
        y = H - PAD,
        x2 = W - PAD
    ));
    out.push_str(&format!(
        "<text x=\"2\" y=\"{:.0}\" font-size=\"11\" fill=\"#333\">{}</text>",
        PAD,
        esc(top)
    ));
    if let (Some(first), Some(last)) = (labels.first(), labels.last()) {
        out.push_str(&format!(
            "<text x=\"{PAD}\" y=\"{:.0}\" font-size=\"11\" fill=\"#333\">{}</text>",
            H - 10.0,
            esc(first)
        ));
        out.push_str(&format!(
            "<text x=\"{:.0}\" y=\"{:.0}\" font-size=\"11\" fill=\"#333\" text-anchor=\"end\">{}</text>",
            W - PAD,
            H - 10.0,
            esc(last)
        ));
    }
}

pub fn escape(text: &str) -> String {
    esc(text)
}
