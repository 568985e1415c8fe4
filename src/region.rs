//! Region presets (docs/regions/): `"region": "<name>"` in the config applies a
//! bundle of keys shipped as JSON in data/regions/, and `"region": "<file>.json"`
//! one kept beside the config, so a province not yet known is one file away. A
//! preset only sets keys: the ones the config gives win.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// The presets compiled in: name and JSON text.
pub const PRESETS: &[(&str, &str)] = &[
    ("national", include_str!("../data/regions/national.json")),
    ("guangzhou", include_str!("../data/regions/guangzhou.json")),
    ("hebei", include_str!("../data/regions/hebei.json")),
    ("jilin", include_str!("../data/regions/jilin.json")),
];

/// The largest preset file read: a preset is a few keys and a path table.
const MAX_PRESET_BYTES: u64 = 1 << 20;

/// The keys of a preset: its JSON object without its `_`-prefixed notes
/// (`_source`, `_about`).
pub fn preset(name_or_file: &str, base_dir: &Path) -> Result<Map<String, Value>> {
    let bad = |why: String| Error::config(format!("config key `region`: {why}"));
    let text = if is_file(name_or_file) {
        let path = base_dir.join(name_or_file);
        let cannot = |why: String| bad(format!("the preset file {} cannot be read: {why}", path.display()));
        // A device or a huge file named by mistake must not hang or exhaust mi_init.
        let meta = std::fs::metadata(&path).map_err(|e| cannot(e.to_string()))?;
        if !meta.is_file() || meta.len() > MAX_PRESET_BYTES {
            return Err(cannot(format!("not a JSON file of at most {MAX_PRESET_BYTES} bytes")));
        }
        let bytes = std::fs::read(&path).map_err(|e| cannot(e.to_string()))?;
        // Written by hand like the config, so read like it: UTF-8, else the ANSI code page.
        crate::charset::decode_unconfigured(&bytes, &format!("the preset file {}", path.display()))?.0
    } else {
        let known = || PRESETS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
        let Some((_, text)) = PRESETS.iter().find(|(n, _)| *n == name_or_file) else {
            return Err(bad(format!(
                "no preset named \"{name_or_file}\"; known: {}; or give a path to a preset .json file",
                known()
            )));
        };
        text.to_string()
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let Ok(Value::Object(mut keys)) = serde_json::from_str::<Value>(text) else {
        return Err(bad(format!("the preset \"{name_or_file}\" is not a JSON object")));
    };
    strip_notes(&mut keys);
    if keys.contains_key("region") {
        return Err(bad(format!("the preset \"{name_or_file}\" names a region itself; presets do not nest")));
    }
    Ok(keys)
}

/// A value that names a file rather than a preset: it has a folder or ends in .json.
fn is_file(s: &str) -> bool {
    s.contains('/') || s.contains('\\') || s.to_ascii_lowercase().ends_with(".json")
}

/// Drops `_`-prefixed notes at every level.
fn strip_notes(m: &mut Map<String, Value>) {
    m.retain(|k, _| !k.starts_with('_'));
    for v in m.values_mut() {
        if let Value::Object(inner) = v {
            strip_notes(inner);
        }
    }
}

/// The config with its region's preset under it: objects merge key by key, and
/// every value the config gives wins over the preset's.
pub fn apply(config: Value, base_dir: &Path) -> Result<Value> {
    let Value::Object(given) = config else { return Ok(config) };
    let region = match given.get("region") {
        None => return Ok(Value::Object(given)),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(Value::Object(given)),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => return Err(Error::config("config key `region`: must be a preset name or a path to a .json file")),
    };
    let mut merged = Value::Object(preset(&region, base_dir)?);
    under(&mut merged, Value::Object(given));
    Ok(merged)
}

/// Lays `top` over `base`; a `null` in `top` removes the key (a preset's extra
/// field or path a site does not want), leaving the default.
fn under(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    under(b.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (b, t) => *b = t,
    }
}
