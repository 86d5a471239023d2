//! The config loader: text to `Config::from_toml_str` never panics, and a config it
//! accepts passes `Config::validate` and every job's cron expression parses in its zone.
#![no_main]

use mpwatch_core::config::Config;
use mpwatch_core::schedule::CronSchedule;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(config) = Config::from_toml_str(&text, "fuzz.toml") {
        config.validate("fuzz.toml").expect("an accepted config validates");
        for job in config.jobs() {
            CronSchedule::parse(&job.cron, config.job_timezone(&job)).expect("an accepted job's cron parses");
        }
    }
});
