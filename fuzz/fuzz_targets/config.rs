//! Configuration files and environment overrides: the input's first line is
//! a list of `KEY=value` overrides separated by `;`, the rest a YAML (then
//! TOML) file. A configuration that loads round-trips through YAML.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::config::{Format, VerifierConfig, env_overrides, load_from_str};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (env, file) = text.split_once('\n').unwrap_or(("", text));
    let vars = env.split(';').filter_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        Some((k.to_owned(), v.to_owned()))
    });
    let overrides = env_overrides("APP", vars);
    for format in [Format::Yaml, Format::Toml] {
        if let Ok(cfg) = load_from_str::<VerifierConfig>(file, format, &overrides) {
            let json = serde_json::to_value(&cfg).expect("serializes");
            let yaml = serde_json::to_string(&json).expect("JSON is YAML");
            let again: VerifierConfig =
                load_from_str(&yaml, Format::Yaml, &[]).expect("loads again");
            assert_eq!(serde_json::to_value(&again).expect("serializes"), json);
        }
    }
});
