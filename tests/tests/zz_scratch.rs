#![allow(clippy::unwrap_used)]
#[tokio::test]
async fn scratch() {
    let reg = porter_e2e::Registry::start();
    let t = std::time::Instant::now();
    porter_e2e::publish_standard(&reg).await;
    eprintln!("publish_standard: {:?}", t.elapsed());
    std::fs::copy(reg.log_path(), "/tmp/regtest/scratch.log").unwrap();
}
