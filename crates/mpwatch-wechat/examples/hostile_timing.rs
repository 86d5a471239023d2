//! Prints how long each hostile input takes to parse (release build recommended):
//! `cargo run --release -p mpwatch-wechat --example hostile_timing`.

fn main() {
    let size = 10 * 1024 * 1024;
    for (name, input) in
        mpwatch_wechat::hostile_inputs(size).into_iter().chain(mpwatch_wechat::hostile_article_bodies(size))
    {
        let start = std::time::Instant::now();
        let page = mpwatch_wechat::parse_page(&input);
        let text_chars = page.text_chars;
        println!(
            "{name:<40} {:>8.1} ms  kind {:<8} body text {text_chars} chars, {} images",
            start.elapsed().as_secs_f64() * 1000.0,
            page.kind.as_str(),
            page.image_urls.len()
        );
    }
}
