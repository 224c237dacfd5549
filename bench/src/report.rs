//! The results: a table printed with each figure's target beside it, a Markdown copy
//! for the README, and `results.json`.

use std::fmt::Write as _;

/// A JSON value, enough for the results file (the bench has no dependencies).
#[derive(Debug, Clone)]
pub enum J {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    pub fn obj(fields: Vec<(&str, J)>) -> J {
        J::Obj(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    pub fn write(&self, out: &mut String, indent: usize) {
        let pad = "  ".repeat(indent + 1);
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) if n.is_finite() => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    let _ = write!(out, "{}", *n as i64);
                } else {
                    let _ = write!(out, "{}", (n * 1000.0).round() / 1000.0);
                }
            }
            J::Num(_) => out.push_str("null"),
            J::Str(s) => {
                out.push('"');
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        c if (c as u32) < 0x20 => {
                            let _ = write!(out, "\\u{:04x}", c as u32);
                        }
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            J::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    out.push_str(if i == 0 { "\n" } else { ",\n" });
                    out.push_str(&pad);
                    v.write(out, indent + 1);
                }
                if !items.is_empty() {
                    out.push('\n');
                    out.push_str(&"  ".repeat(indent));
                }
                out.push(']');
            }
            J::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    out.push_str(if i == 0 { "\n" } else { ",\n" });
                    out.push_str(&pad);
                    J::Str(k.clone()).write(out, indent + 1);
                    out.push_str(": ");
                    v.write(out, indent + 1);
                }
                if !fields.is_empty() {
                    out.push('\n');
                    out.push_str(&"  ".repeat(indent));
                }
                out.push('}');
            }
        }
    }
}

/// Whether a figure must be below or above its target.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    Below(f64),
    AtLeast(f64),
    None,
}

/// One line of the table.
pub struct Row {
    pub section: &'static str,
    pub metric: String,
    pub value: f64,
    pub unit: &'static str,
    pub goal: Goal,
    pub note: String,
}

impl Row {
    pub fn verdict(&self) -> &'static str {
        match self.goal {
            Goal::Below(t) if self.value < t => "met",
            Goal::AtLeast(t) if self.value >= t => "met",
            Goal::None => "",
            _ => "MISSED",
        }
    }

    pub fn target_text(&self) -> String {
        match self.goal {
            Goal::Below(t) => format!("< {} {}", fmt_num(t), self.unit),
            Goal::AtLeast(t) => format!(">= {} {}", fmt_num(t), self.unit),
            Goal::None => "-".to_string(),
        }
    }

    pub fn value_text(&self) -> String {
        format!("{} {}", fmt_num(self.value), self.unit)
    }

    pub fn to_json(&self) -> J {
        J::obj(vec![
            ("section", J::Str(self.section.to_string())),
            ("metric", J::Str(self.metric.clone())),
            ("value", J::Num(self.value)),
            ("unit", J::Str(self.unit.to_string())),
            (
                "target",
                match self.goal {
                    Goal::Below(t) => J::Str(format!("< {t}")),
                    Goal::AtLeast(t) => J::Str(format!(">= {t}")),
                    Goal::None => J::Null,
                },
            ),
            (
                "met",
                match self.goal {
                    Goal::None => J::Null,
                    _ => J::Bool(self.verdict() == "met"),
                },
            ),
            ("note", J::Str(self.note.clone())),
        ])
    }
}

pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        // Thousands separators for big counts.
        let s = format!("{:.0}", v);
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub fn text_table(rows: &[Row]) -> String {
    let headers = ["section", "metric", "value", "target", "", "note"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.section.to_string(),
                r.metric.clone(),
                r.value_text(),
                r.target_text(),
                r.verdict().to_string(),
                r.note.clone(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for c in &cells {
        for (i, s) in c.iter().enumerate() {
            widths[i] = widths[i].max(s.chars().count());
        }
    }
    let line = |c: &[String; 6]| {
        let mut s = String::new();
        for (i, cell) in c.iter().enumerate() {
            let w = widths[i];
            if i == 2 {
                let _ = write!(s, "{cell:>w$}  ");
            } else {
                let _ = write!(s, "{cell:<w$}  ");
            }
        }
        s.trim_end().to_string()
    };
    let mut out = String::new();
    out.push_str(&line(&headers.map(str::to_string)));
    out.push('\n');
    out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 10));
    out.push('\n');
    for c in &cells {
        out.push_str(&line(c));
        out.push('\n');
    }
    out
}

pub fn markdown_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| section | metric | value | target | | note |\n|---|---|---:|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.section,
            r.metric,
            r.value_text(),
            r.target_text(),
            r.verdict(),
            r.note
        );
    }
    out
}
