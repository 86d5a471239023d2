//! `mpwatch sim` survives its clients: connections dropped in the middle of a large
//! answer do not end the process (SIGPIPE).

mod common;

use std::io::{Read as _, Write as _};
use std::time::Duration;

#[test]
fn the_simulator_survives_clients_that_hang_up_mid_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sim = common::SimProcess::start(dir.path(), 1, 2);
    let base = sim.base.clone();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    mpwatch_crawl::fetch::install_tls_provider();
    let (truth, address): (serde_json::Value, String) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut scenario: serde_json::Value =
            client.get(format!("{base}/__sim/scenario")).send().await.unwrap().json().await.unwrap();
        scenario["faults"] = serde_json::json!([
            {"endpoint": "article", "fault": {"kind": "oversize", "bytes": 64 * 1024 * 1024}, "probability": 1.0}
        ]);
        let put = client.put(format!("{base}/__sim/scenario")).json(&scenario).send().await.unwrap();
        assert!(put.status().is_success(), "{}", put.status());
        let truth = client.get(format!("{base}/__sim/truth")).send().await.unwrap().json().await.unwrap();
        (truth, base.trim_start_matches("http://").to_string())
    });
    let path = truth["articles"][0]["url"].as_str().unwrap().trim_start_matches("https://mp.weixin.qq.com").to_string();
    for _ in 0..5 {
        let mut socket = std::net::TcpStream::connect(&address).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(socket, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
        let mut buffer = vec![0u8; 128 * 1024];
        let mut read = 0;
        while read < buffer.len() {
            let n = socket.read(&mut buffer[read..]).unwrap();
            assert!(n > 0, "the answer ended early");
            read += n;
        }
        // Hang up with most of the 64 MB still to send.
        drop(socket);
    }
    // Still serving.
    let alive: serde_json::Value =
        runtime.block_on(async { reqwest::get(format!("{base}/__sim/truth")).await.unwrap().json().await.unwrap() });
    assert_eq!(alive["articles"].as_array().unwrap().len(), truth["articles"].as_array().unwrap().len());
}
