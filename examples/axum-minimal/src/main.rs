//! `cargo run -p axum-minimal -- DIR` serves the shop on 127.0.0.1:8080 with its files in DIR.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "shop-data".into());
    std::fs::create_dir_all(&dir)?;
    let (routes, _) = axum_minimal::app(std::path::Path::new(&dir))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    let service = routes.into_make_service_with_connect_info::<std::net::SocketAddr>();
    Ok(axum::serve(listener, service).await?)
}
