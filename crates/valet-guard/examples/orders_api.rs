//! An orders API protected by valet-guard: a public route, a route needing `orders:read`,
//! one needing `orders:write`.
//!
//! ```text
//! VALET_ISSUER=http://127.0.0.1:8080 VALET_AUDIENCE=https://orders.example \
//! BIND_ADDRESS=127.0.0.1:3000 cargo run -p valet-guard --example orders_api
//!
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/orders
//! curl http://127.0.0.1:3000/.well-known/oauth-protected-resource
//! ```
//!
//! `RESOURCE_URL` (default `http://{BIND_ADDRESS}`, fine on loopback; https elsewhere) is
//! this API's URL as clients call it:
//! the RFC 9728 metadata names it, and DPoP proofs' `htu` are checked against it.

use std::error::Error;

use axum::handler::Handler;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use valet_guard::{Guard, GuardConfig, VerifiedToken};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let issuer = std::env::var("VALET_ISSUER")?;
    let audience = std::env::var("VALET_AUDIENCE")?;
    let bind = std::env::var("BIND_ADDRESS").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());

    let resource = std::env::var("RESOURCE_URL").unwrap_or_else(|_| format!("http://{bind}"));
    let config = GuardConfig::builder(issuer, audience)
        .resource(resource)
        .scopes_supported(["orders:read", "orders:write"])
        .build()?;
    let guard = Guard::new(config).await?;
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("orders API on http://{bind}");
    axum::serve(listener, app(guard)).await?;
    Ok(())
}

/// The routes. Each handler carries its own scope requirement (`Handler::layer`), so GET
/// and POST on one path can need different scopes; `.layer(guard.layer())` on the whole
/// router would require a valid token everywhere.
fn app(guard: Guard) -> Router {
    Router::new()
        .route("/health", get(health))
        .route(
            "/orders",
            get(list_orders.layer(guard.require(["orders:read"])))
                .post(create_order.layer(guard.require(["orders:write"]))),
        )
        // RFC 9728: where clients learn which authorization server to ask.
        .merge(guard.metadata_router())
        .with_state(guard)
}

async fn health() -> &'static str {
    "ok"
}

/// The token was verified by the layer; the extractor hands it over.
async fn list_orders(token: VerifiedToken) -> Json<Value> {
    Json(json!({
        "customer": token.subject(),
        "client": token.client_id(),
        "orders": [],
    }))
}

async fn create_order(token: VerifiedToken, Json(order): Json<Value>) -> (StatusCode, Json<Value>) {
    (
        StatusCode::CREATED,
        Json(json!({"customer": token.subject(), "order": order})),
    )
}
