//! Prints how long each hostile input takes to parse (release build recommended):
//! `cargo run --release -p mpwatch-wechat --example hostile_timing`.

fn main() {
    for (name, input) in mpwatch_wechat::hostile_inputs(10 * 1024 * 1024) {
        let start = std::time::Instant::now();
        let page = mpwatch_wechat::parse_page(&input);
        println!("{name:<30} {:>8.1} ms  kind {}", start.elapsed().as_secs_f64() * 1000.0, page.kind.as_str());
    }
}
