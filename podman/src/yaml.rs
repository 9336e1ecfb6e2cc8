//! A small, deterministic YAML writer for the manifests: JSON values out as block YAML, multi-line
//! strings (rendered configs) as literal blocks so they stay readable in review and in golden files.
//!
//! Quoted scalars are written as JSON strings, which YAML 1.2 reads as double-quoted scalars; plain
//! scalars are used only for strings that cannot be mistaken for another type.

use serde_json::Value;

/// Writes `docs` as one multi-document YAML stream (`---` between documents).
pub fn to_yaml_stream(docs: &[Value]) -> String {
    let mut out = String::new();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        write_value(&mut out, d, 0);
    }
    out
}

/// Writes one document.
pub fn to_yaml(doc: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, doc, 0);
    out
}

fn write_value(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                pad(out, indent);
                out.push_str(&key(k));
                out.push(':');
                write_child(out, v, indent);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                pad(out, indent);
                out.push('-');
                write_item(out, item, indent);
            }
        }
        other => {
            pad(out, indent);
            out.push_str(&scalar(other, indent));
            out.push('\n');
        }
    }
}

/// After `key:` — a nested block on the next lines, or a scalar on the same line.
fn write_child(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_value(out, v, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_value(out, v, indent);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, indent + 2));
            out.push('\n');
        }
    }
}

/// After `- ` — a map's first key shares the dash's line.
fn write_item(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let mut first = true;
            for (k, v) in m {
                if first {
                    out.push(' ');
                    first = false;
                } else {
                    pad(out, indent + 2);
                }
                out.push_str(&key(k));
                out.push(':');
                write_child(out, v, indent + 2);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_value(out, v, indent + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, indent + 2));
            out.push('\n');
        }
    }
}

fn pad(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn key(k: &str) -> String {
    if plain_ok(k) {
        k.to_owned()
    } else {
        Value::from(k).to_string()
    }
}

fn scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::String(s) if s.contains('\n') => literal_block(s, indent),
        Value::String(s) if plain_ok(s) => s.clone(),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

/// A string YAML reads back as the same string when written without quotes.
fn plain_ok(s: &str) -> bool {
    const RESERVED: [&str; 11] = [
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~", "",
    ];
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '_');
    first_ok
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
}

/// `|` block keeping the text exactly: chomping indicator from the trailing newlines, an explicit
/// indentation indicator when the first line starts with a space.
fn literal_block(s: &str, indent: usize) -> String {
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let indicator = if body.starts_with(' ') || body.starts_with('\n') {
        "2"
    } else {
        ""
    };
    let mut out = format!("|{indicator}{chomp}\n");
    // Keep every trailing newline but the last one, which the `+` indicator adds back.
    let content = if chomp == "+" {
        &s[..s.len() - 1]
    } else {
        body
    };
    for line in content.split('\n') {
        if !line.is_empty() {
            pad(&mut out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
    // The caller adds the newline that ends a scalar.
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_maps_lists_and_scalars() {
        let v = json!({
            "apiVersion": "v1",
            "spec": {"containers": [{"name": "a", "args": ["--x", "1"], "ports": []}], "n": 3},
            "flag": true,
            "s": "yes",
            "q": "a: b",
        });
        let y = to_yaml(&v);
        assert_eq!(
            y,
            "apiVersion: v1\nflag: true\nq: \"a: b\"\ns: \"yes\"\nspec:\n  containers:\n  - args:\n    - \"--x\"\n    - \"1\"\n    name: a\n    ports: []\n  \"n\": 3\n"
        );
    }

    #[test]
    fn multi_line_strings_become_literal_blocks() {
        let v =
            json!({"data": {"a.cfg": "x = 1\n\n  y\n", "b": "no newline\nend", "c": "  lead\n"}});
        let y = to_yaml(&v);
        assert!(y.contains("a.cfg: |\n    x = 1\n\n      y\n"), "{y}");
        assert!(y.contains("b: |-\n    no newline\n    end\n"), "{y}");
        assert!(y.contains("c: |2\n      lead\n"), "{y}");
    }

    #[test]
    fn stream_separates_documents() {
        let y = to_yaml_stream(&[json!({"a": 1}), json!({"b": 2})]);
        assert_eq!(y, "a: 1\n---\nb: 2\n");
    }
}
