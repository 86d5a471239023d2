//! The secrets loader: text to `Secrets::from_toml_str` never panics, accepted secrets
//! have unique client names, and no secret value reaches an error or `Debug` output.
//!
//! For the leak check, a document that is valid TOML has every value under a secret key
//! (`uin`, `key`, `pass_ticket`, `appmsg_token`, `cookie`, `token`, `url`, at any depth)
//! replaced by a canary of the same type, is written back, and loaded again: neither the
//! error (`Display`, `Debug`) nor the loaded `Secrets` (`Debug`) may show a canary.
#![no_main]

use std::path::Path;

use mpwatch_core::secrets::Secrets;
use toml::{Table, Value};

const SECRET_KEYS: [&str; 7] = ["uin", "key", "pass_ticket", "appmsg_token", "cookie", "token", "url"];
/// Every string canary contains this; no key or message of the loader does.
const STRING_CANARY: &str = "zqxcanary";
/// Every integer canary's decimal form starts with these digits (line numbers and
/// indices are far smaller).
const INTEGER_CANARY: i64 = 7_391_846_205_170_000;
const INTEGER_MARK: &str = "739184620517";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("secrets.toml");
    check_accepted(Secrets::from_toml_str(&text, path));

    // The leak check needs values the loader cannot have taken from anywhere else.
    if text.to_ascii_lowercase().contains(STRING_CANARY) || text.contains(INTEGER_MARK) {
        return;
    }
    let Ok(mut table) = text.parse::<Table>() else { return };
    let mut count = 0;
    replace_secrets(&mut table, &mut count);
    if count == 0 {
        return;
    }
    let Ok(canaried) = toml::to_string(&table) else { return };
    match Secrets::from_toml_str(&canaried, path) {
        Ok(secrets) => assert_no_canary(&format!("{secrets:?}"), &canaried),
        Err(error) => assert_no_canary(&format!("{error} {error:?}"), &canaried),
    }
});

fn check_accepted(result: Result<Secrets, mpwatch_core::secrets::SecretsError>) {
    if let Ok(secrets) = result {
        let mut names: Vec<&str> = secrets.client.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        assert!(names.windows(2).all(|pair| pair[0] != pair[1]), "duplicate client names accepted: {names:?}");
    }
}

fn assert_no_canary(printed: &str, document: &str) {
    assert!(
        !printed.contains(STRING_CANARY) && !printed.contains(INTEGER_MARK),
        "a secret value leaked: {printed}\nfrom the document:\n{document}"
    );
}

fn replace_secrets(table: &mut Table, count: &mut i64) {
    for (key, value) in table.iter_mut() {
        if SECRET_KEYS.contains(&key.as_str()) {
            canary(value, count);
        } else {
            descend(value, count);
        }
    }
}

fn descend(value: &mut Value, count: &mut i64) {
    match value {
        Value::Table(table) => replace_secrets(table, count),
        Value::Array(items) => items.iter_mut().for_each(|item| descend(item, count)),
        _ => {}
    }
}

/// Replaces every leaf under a secret key by a canary of its type (booleans and dates
/// cannot carry one and stay as they are).
fn canary(value: &mut Value, count: &mut i64) {
    *count += 1;
    match value {
        Value::String(text) => *text = format!("{STRING_CANARY}{count}"),
        Value::Integer(number) => *number = INTEGER_CANARY + *count,
        Value::Float(number) => *number = (INTEGER_CANARY + *count) as f64,
        Value::Table(table) => table.iter_mut().for_each(|(_, item)| canary(item, count)),
        Value::Array(items) => items.iter_mut().for_each(|item| canary(item, count)),
        Value::Boolean(_) | Value::Datetime(_) => {}
    }
}
