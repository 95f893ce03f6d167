//! Recall-vs-QPS curves (ann-benchmarks style) as a PNG: QuiverDB's rows from this run, and optionally the
//! peers' rows from the JSON that `shared/data/peers_bench.py --out` writes.

use crate::bench::Row;
use anyhow::{Context, bail};
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

/// TrueType fonts tried, in order, for labels (plotters draws text with a font we hand it).
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

fn register_font() -> anyhow::Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let env = std::env::var("QUIVER_FONT").ok();
        let candidates = env.iter().map(String::as_str).chain(FONT_PATHS.iter().copied());
        for path in candidates {
            if let Ok(bytes) = std::fs::read(path) {
                // plotters keeps fonts for the life of the process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(format!(
            "no TrueType font found for plot labels (tried {}); install fonts-dejavu-core or set QUIVER_FONT=/path/font.ttf",
            FONT_PATHS.join(", ")
        ))
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

/// A named curve: (recall, qps) points.
#[derive(Debug, Default)]
struct Curve {
    points: Vec<(f64, f64)>,
}

fn peer_curves(path: &Path) -> anyhow::Result<BTreeMap<String, Curve>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading peers file {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let rows = json
        .get("rows")
        .and_then(|r| r.as_array())
        .with_context(|| format!("{}: expected an object with a `rows` array", path.display()))?;
    let mut curves: BTreeMap<String, Curve> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let field =
            |name: &str| row.get(name).with_context(|| format!("{}: rows[{i}] has no `{name}`", path.display()));
        let peer = field("peer")?.as_str().unwrap_or("?");
        let params = row.get("params").and_then(|p| p.as_str()).unwrap_or("");
        let qps = field("qps")?.as_f64().with_context(|| format!("rows[{i}].qps is not a number"))?;
        let recall = field("recall10")?.as_f64().with_context(|| format!("rows[{i}].recall10 is not a number"))?;
        curves.entry(format!("{peer} {params}").trim().to_owned()).or_default().points.push((recall, qps));
    }
    Ok(curves)
}

pub fn draw(path: &Path, rows: &[Row], peers: Option<&Path>) -> anyhow::Result<()> {
    if rows.is_empty() {
        bail!("nothing to plot");
    }
    register_font()?;
    let mut curves: Vec<(String, Curve, bool)> = Vec::new();
    let mut ours: BTreeMap<String, Curve> = BTreeMap::new();
    for r in rows {
        let label = format!("quiver {} {}", r.index, r.build_params).trim().to_owned();
        ours.entry(label).or_default().points.push((r.recall, r.qps));
    }
    curves.extend(ours.into_iter().map(|(l, c)| (l, c, true)));
    if let Some(p) = peers {
        curves.extend(peer_curves(p)?.into_iter().map(|(l, c)| (l, c, false)));
    }
    for (_, c, _) in &mut curves {
        c.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let all = curves.iter().flat_map(|(_, c, _)| c.points.iter());
    let (mut rmin, mut qmin, mut qmax) = (1.0f64, f64::MAX, 0.0f64);
    for &(r, q) in all {
        rmin = rmin.min(r);
        qmin = qmin.min(q);
        qmax = qmax.max(q);
    }
    let rmin = (rmin - 0.02).clamp(0.0, 0.98);
    let (qmin, qmax) = ((qmin * 0.7).max(1e-3), (qmax * 1.4).max(1.0));

    let root = BitMapBackend::new(path, (1100, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    let first = &rows[0];
    let title = format!(
        "recall@{} vs QPS — n={} dim={} threads={} ({})",
        first.k, first.n, first.dim, first.threads, first.mode
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(rmin..1.0f64, (qmin..qmax).log_scale())?;
    chart
        .configure_mesh()
        .x_desc(format!("recall@{}", first.k))
        .y_desc("queries per second (log)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for (i, (label, curve, ours)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let width = if *ours { 3 } else { 1 };
        chart
            .draw_series(LineSeries::new(curve.points.iter().copied(), color.stroke_width(width)))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(width)));
        chart.draw_series(curve.points.iter().map(|&p| Circle::new(p, if *ours { 4 } else { 3 }, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A collection's map as a PNG: every point a dot coloured by its `color` value (one colour per value, the
/// eleven commonest named in the legend, the rest grey), IVF cells as crosses.
pub fn map_png(path: &Path, map: &quiver_server::wire::CollectionMap, title: &str) -> anyhow::Result<()> {
    if map.points.is_empty() {
        bail!("the collection has no points to map");
    }
    register_font()?;
    let label = |v: &Option<serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => "(none)".to_owned(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for p in &map.points {
        *counts.entry(label(&p.color)).or_default() += 1;
    }
    let mut groups: Vec<(String, usize)> = counts.into_iter().collect();
    groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let named: Vec<String> = groups.iter().take(11).map(|g| g.0.clone()).collect();

    let root = BitMapBackend::new(path, (1000, 860)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .build_cartesian_2d(-0.02f32..1.02f32, -0.02f32..1.02f32)?;
    let grey = RGBColor(173, 181, 189);
    let others: Vec<(f32, f32)> =
        map.points.iter().filter(|p| !named.contains(&label(&p.color))).map(|p| (p.x, p.y)).collect();
    if !others.is_empty() {
        chart
            .draw_series(others.iter().map(|&xy| Circle::new(xy, 2, grey.filled())))?
            .label("other")
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, grey.filled()));
    }
    for (i, name) in named.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let pts: Vec<(f32, f32)> = map.points.iter().filter(|p| &label(&p.color) == name).map(|p| (p.x, p.y)).collect();
        chart
            .draw_series(pts.iter().map(|&xy| Circle::new(xy, 2, color.filled())))?
            .label(format!("{name} ({})", pts.len()))
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
    }
    chart.draw_series(map.cells.iter().map(|c| Cross::new((c.x, c.y), 4, BLACK.stroke_width(2))))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
