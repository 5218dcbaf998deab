//! Cards: tokenize at checkout, and charge a stored card (step-up on a new address).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use shopsafe::aio::blocking;
use shopsafe::card::{CardToken, Expiry, Order, Pan, Purpose, ShippingAddress, StepUp, VaultStore};
use shopsafe::kernel::Timestamp;
use shopsafe::rotation::SecurityStamp;

use crate::accounts::valid_lines;
use crate::answers::{Body, Source, error, internal, spend_async};
use crate::app::{CustomerStores, Shared};
use crate::profiles::AppError;
use crate::session::Customer;

#[derive(Deserialize)]
pub(crate) struct NewCard {
    number: String,
    expiry: String,
}

pub(crate) async fn add_card<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account, _): Customer,
    Body(body): Body<NewCard>,
) -> Response {
    // The errors name what is wrong, never the number.
    let Ok(pan) = Pan::parse(&body.number) else {
        return error(StatusCode::BAD_REQUEST, "invalid_card_number");
    };
    let Ok(expiry) = Expiry::parse(&body.expiry) else {
        return error(StatusCode::BAD_REQUEST, "invalid_expiry");
    };
    let card = match app.vault.tokenize(pan, expiry).await {
        Ok(card) => card,
        Err(e) => return internal("tokenize", &e),
    };
    let store = Arc::clone(&app.store);
    let saved = card.clone();
    if let Err(e) = blocking(move || store.save_card(&account, &saved, Timestamp::now())).await {
        return internal("save card", &e);
    }
    (
        StatusCode::CREATED,
        Json(json!({
            "token": card.token.as_str(),
            "brand": card.brand.to_string(),
            "last4": card.last4.to_string(),
        })),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(crate) struct ChargeBody {
    card_token: String,
    amount_cents: u64,
    ship_to: Vec<String>,
}

pub(crate) async fn charge<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account, _): Customer,
    Source(source): Source,
    Body(body): Body<ChargeBody>,
) -> Response {
    if !valid_lines(&body.ship_to) || body.amount_cents == 0 {
        return error(StatusCode::BAD_REQUEST, "invalid_order");
    }
    // Per account first: one customer charging their own card in a loop must not use
    // up the vault's reveals for everyone.
    if let Err(refused) = spend_async(&app.charges, &account, &source).await {
        return refused;
    }
    let Ok(token) = CardToken::parse(&body.card_token) else {
        return error(StatusCode::NOT_FOUND, "no_such_card");
    };
    let (store, profiles, who) = (
        Arc::clone(&app.store),
        Arc::clone(&app.profiles),
        account.clone(),
    );
    let looked_up = blocking(move || -> Result<_, AppError> {
        Ok((store.cards(&who)?, profiles.addresses(who.as_str())?))
    })
    .await;
    let (cards, known) = match looked_up {
        Ok(v) => v,
        Err(e) => return internal("load cards", &e),
    };
    let Some(card) = cards.into_iter().find(|c| c.token == token) else {
        return error(StatusCode::NOT_FOUND, "no_such_card");
    };
    let lines =
        |l: &[String]| ShippingAddress::new(&l.iter().map(String::as_str).collect::<Vec<_>>());
    let ship_to = lines(&body.ship_to);
    let known: Vec<ShippingAddress> = known.iter().map(|a| lines(a)).collect();
    if let StepUp::Required { .. } =
        StepUp::assess(&card, &Order::new(&ship_to, &known, Timestamp::now()))
    {
        return error(StatusCode::FORBIDDEN, "step_up_required");
    }
    let grant = app.vault.grant(Purpose::Charge, CHARGES);
    let pan = match app.vault.detokenize(token, grant).await {
        Ok(pan) => pan,
        Err(e) => return internal("detokenize", &e),
    };
    let authorization = processor_charge(pan, body.amount_cents);
    let profiles = Arc::clone(&app.profiles);
    let (shipped, amount) = (body.ship_to, body.amount_cents);
    let recorded = blocking(move || -> Result<String, AppError> {
        // Time first, so that ids sort as orders were made; then 128 random bits.
        let id = format!(
            "{:013}-{}",
            Timestamp::now().as_millis(),
            base16ct::lower::encode_string(SecurityStamp::generate()?.as_bytes())
        );
        profiles.record_order(account.as_str(), &id, amount, &shipped)?;
        profiles.record_shipment(account.as_str(), &shipped)?;
        Ok(id)
    })
    .await;
    let order = match recorded {
        Ok(id) => id,
        Err(e) => return internal("record order", &e),
    };
    (
        StatusCode::CREATED,
        Json(json!({ "authorization": authorization, "amount_cents": amount, "order": order })),
    )
        .into_response()
}

/// The one caller the vault's grant policy lets reveal card numbers.
pub(crate) const CHARGES: &str = "shop_server/charges";

/// The payment processor, stubbed: takes the number (wiped when dropped here), logs
/// nothing of it, answers an authorization code.
pub(crate) fn processor_charge(pan: Pan, amount_cents: u64) -> String {
    let code = format!("auth-{}-{amount_cents}", Timestamp::now().as_millis());
    drop(pan);
    code
}
