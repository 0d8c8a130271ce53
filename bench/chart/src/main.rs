//! Draws `bench/results.csv` (workload,contender,value,unit) as an SVG: one group of bars per
//! workload, each bar the contender's figure relative to sockit's (sockit = 1.0; for memory,
//! lower is better and the axis says so).
//!
//! Usage: bench-chart results.csv chart.svg

use std::collections::BTreeMap;
use std::error::Error;

use plotters::prelude::*;

const COLORS: [RGBColor; 7] = [
    RGBColor(0xd9, 0x48, 0x1c),
    RGBColor(0x2b, 0x6c, 0xb0),
    RGBColor(0x4a, 0x9a, 0x3c),
    RGBColor(0x8e, 0x5a, 0xa8),
    RGBColor(0xc9, 0x9a, 0x1e),
    RGBColor(0x55, 0x55, 0x55),
    RGBColor(0x1e, 0xa0, 0xa0),
];

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (input, output) = match (args.get(1), args.get(2)) {
        (Some(i), Some(o)) => (i, o),
        _ => return Err("usage: bench-chart results.csv chart.svg".into()),
    };
    let text = std::fs::read_to_string(input)?;
    // workload -> [(contender, value, unit)], in file order.
    let mut order: Vec<String> = Vec::new();
    let mut rows: BTreeMap<String, Vec<(String, f64, String)>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let [w, c, v, u] = f[..] else { continue };
        let Ok(v) = v.parse::<f64>() else { continue };
        if !rows.contains_key(w) {
            order.push(w.to_string());
        }
        rows.entry(w.to_string())
            .or_default()
            .push((c.to_string(), v, u.to_string()));
    }
    let mut contenders: Vec<String> = Vec::new();
    for w in &order {
        for (c, _, _) in &rows[w] {
            if !contenders.contains(c) {
                contenders.push(c.clone());
            }
        }
    }
    let bar_h = 14;
    let group_h: i32 = order
        .iter()
        .map(|w| rows[w].len() as i32 * bar_h + 34)
        .sum();
    let (width, left, right) = (900, 230, 80);
    let height = (group_h + 90) as u32;
    let root = SVGBackend::new(output, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = ("sans-serif", 18).into_font().color(&BLACK);
    let small = ("sans-serif", 12).into_font().color(&BLACK);
    root.draw(&Text::new(
        "sockit vs peers: each figure relative to sockit's (sockit = 1.0)",
        (20, 12),
        title,
    ))?;
    let plot_w = width as i32 - left - right;
    let mut y = 50;
    for w in &order {
        let group = &rows[w];
        let base = group
            .iter()
            .find(|(c, _, _)| c == "sockit")
            .map(|(_, v, _)| *v)
            .unwrap_or(1.0)
            .max(1e-9);
        let max_ratio = group
            .iter()
            .map(|(_, v, _)| v / base)
            .fold(1.0f64, f64::max);
        let unit = &group[0].2;
        let lower_better = unit.starts_with("KiB");
        root.draw(&Text::new(
            format!(
                "{w} ({unit}{})",
                if lower_better {
                    ", lower is better"
                } else {
                    ""
                }
            ),
            (20, y),
            ("sans-serif", 13)
                .into_font()
                .style(FontStyle::Bold)
                .color(&BLACK),
        ))?;
        y += 18;
        for (c, v, _) in group {
            let ratio = v / base;
            let len = ((ratio / max_ratio) * f64::from(plot_w)) as i32;
            let color = COLORS[contenders.iter().position(|x| x == c).unwrap_or(0) % COLORS.len()];
            root.draw(&Text::new(c.clone(), (40, y), small.clone()))?;
            root.draw(&Rectangle::new(
                [(left, y), (left + len.max(1), y + bar_h - 3)],
                color.filled(),
            ))?;
            root.draw(&Text::new(
                format!("{ratio:.2}x  ({v:.0})"),
                (left + len.max(1) + 6, y),
                small.clone(),
            ))?;
            y += bar_h;
        }
        y += 16;
    }
    root.present()?;
    Ok(())
}
