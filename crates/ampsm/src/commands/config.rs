//! `config get|set|list|path`.

use super::CliError;
use crate::cli::ConfigCommand;
use crate::output;
use ampsm_config::{Config, Paths};
use serde_json::Value;

pub fn run(cmd: ConfigCommand, json: bool) -> Result<(), CliError> {
    let paths = Paths::from_env()?;
    match cmd {
        ConfigCommand::Path => {
            if json {
                output::print_json(&serde_json::json!({ "path": paths.config }))?;
            } else {
                println!("{}", paths.config.display());
            }
        }
        ConfigCommand::Get { key } => {
            let loaded = load(&paths)?;
            let value = loaded.get(&key)?;
            if json {
                output::print_json(&serde_json::json!({ "key": key, "value": value }))?;
            } else {
                println!("{}", plain(&value));
            }
        }
        ConfigCommand::Set { key, value } => {
            let config = ampsm_config::config::set_in_file(&paths.config, &key, &value)?;
            let new_value = hidden(&key, config.get(&key)?);
            if json {
                output::print_json(
                    &serde_json::json!({ "key": key, "value": new_value, "path": paths.config }),
                )?;
            } else {
                println!("{key} = {}  ({})", plain(&new_value), paths.config.display());
            }
        }
        ConfigCommand::List => {
            let loaded = load(&paths)?;
            let entries: Vec<(String, Value)> =
                loaded.list().into_iter().map(|(k, v)| (k.clone(), hidden(&k, v))).collect();
            if json {
                let map: serde_json::Map<String, Value> = entries.into_iter().collect();
                output::print_json(&map)?;
            } else {
                let mut t = output::table(&["KEY", "VALUE"]);
                for (k, v) in entries {
                    t.add_row(vec![k, plain(&v)]);
                }
                output::print_table(&t);
            }
        }
    }
    Ok(())
}

fn load(paths: &Paths) -> Result<Config, CliError> {
    let loaded = Config::load(&paths.config)?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    Ok(loaded.config)
}

/// A secret value (an agent's environment, a key or token) as listings show it: hidden, so that a
/// terminal log or a pasted listing never carries it. `config get KEY` prints the value itself.
fn hidden(key: &str, v: Value) -> Value {
    let empty = match &v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if ampsm_config::config::is_secret_key(key) && !empty {
        Value::String("•••• (hidden; `amp-sessions config get KEY` shows it)".into())
    } else {
        v
    }
}

/// A value as a person reads it: strings bare, null as empty, the rest as JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
