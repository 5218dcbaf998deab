//! Breach day: the exposure notice (what the campaign mails, what `/me/exposure`
//! shows), declaring an incident, running its campaign and reading its state, the audit
//! checkpoint and the hashing pool.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use shopsafe::aio::{CampaignEnd, CampaignTask, blocking, spawn_campaign};
use shopsafe::audit::AuditSink;
use shopsafe::card::VaultStore;
use shopsafe::kernel::{AccountId, BrandId, Timestamp};
use shopsafe::minimize::DataMap;
use shopsafe::rotation::{CampaignOptions, Error as AuthError, Incident, IncidentScope};

use crate::answers::{Admin, Body, auth_error, error, internal};
use crate::app::{App, CampaignRun, CustomerStores, Shared};
use crate::log;
use crate::profiles::{AppError, Profiles};
use crate::session::Customer;

/// The fields of one customer that the customer database holds.
pub(crate) fn customer_fields<S: CustomerStores>(
    store: &S,
    profiles: &dyn Profiles,
    account: &AccountId,
) -> Result<Vec<&'static str>, AppError> {
    let mut fields = vec!["email address", "home address", "password"];
    if let Some(p) = profiles.profile(account.as_str())? {
        if p.name.is_some() {
            fields.push("name");
        }
        if p.phone.is_some() {
            fields.push("phone number");
        }
    }
    if profiles.addresses(account.as_str())?.len() > 1 {
        fields.push("shipping address");
    }
    if !store.cards(account)?.is_empty() {
        fields.push("card number");
    }
    Ok(fields)
}

pub(crate) fn exposure_text<S: CustomerStores>(
    map: &DataMap,
    store: &S,
    profiles: &dyn Profiles,
    incident: &Incident,
    account: &AccountId,
) -> Result<String, AppError> {
    let affected = match &incident.scope {
        IncidentScope::Brand(brand) => store
            .load_credential(account)?
            .is_some_and(|c| c.brands.contains(brand)),
        IncidentScope::Accounts => store.is_listed(incident.id, account)?,
        _ => true,
    };
    let fields = if affected {
        customer_fields(store, profiles, account)?
    } else {
        Vec::new()
    };
    Ok(map.incident(&["customer_db"]).notice(&fields))
}

pub(crate) async fn my_exposure<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account, _): Customer,
) -> Response {
    let (store, profiles, map) = (
        Arc::clone(&app.store),
        Arc::clone(&app.profiles),
        Arc::clone(&app.data_map),
    );
    let notice = blocking(move || -> Result<Option<(i64, String)>, AppError> {
        let Some(last) = store
            .incidents()?
            .into_iter()
            .max_by_key(|i| (i.declared_at, i.id.0))
        else {
            return Ok(None);
        };
        let text = exposure_text(&map, &*store, &*profiles, &last, &account)?;
        Ok(Some((last.id.0, text)))
    })
    .await;
    match notice {
        Ok(Some((incident, notice))) => {
            Json(json!({ "incident": incident, "notice": notice })).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "no_incident"),
        Err(e) => internal("exposure", &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct NewIncident {
    scope: Value,
    reason: String,
    /// End every session the incident compromises at once (they are refused from the
    /// declaration on anyway; this also clears them from the customers' lists).
    #[serde(default)]
    end_sessions: bool,
}

/// `POST /admin/audit/checkpoint`: a MAC'd checkpoint of the vault's audit trail, to be
/// shipped somewhere this machine cannot write.
pub(crate) async fn audit_checkpoint<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    _: Admin,
) -> Response {
    let audit = Arc::clone(&app.audit);
    match blocking(move || audit.checkpoint()).await {
        Ok(cp) => {
            Json(json!({ "records": cp.records, "checkpoint": cp.to_string() })).into_response()
        }
        Err(e) => {
            log(&format!("audit checkpoint failed: {e}"));
            error(StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable")
        }
    }
}

/// `GET /admin/pool`: the hashing pool's slots and how many are free now.
pub(crate) async fn pool_state<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    _: Admin,
) -> Response {
    let pool = app.auth.pool();
    Json(json!({ "size": pool.size(), "available": pool.available() })).into_response()
}

pub(crate) async fn declare<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    _: Admin,
    Body(body): Body<NewIncident>,
) -> Response {
    let scope = match &body.scope {
        Value::String(s) if s == "all" => IncidentScope::All,
        Value::Object(o) => match o.get("brand").and_then(Value::as_str).map(BrandId::new) {
            Some(Ok(brand)) => IncidentScope::Brand(brand),
            _ => return error(StatusCode::BAD_REQUEST, "invalid_scope"),
        },
        _ => return error(StatusCode::BAD_REQUEST, "invalid_scope"),
    };
    let (store, sessions) = (Arc::clone(&app.store), Arc::clone(&app.sessions));
    let (reason, end_sessions) = (body.reason, body.end_sessions);
    let declared = blocking(move || {
        let incident = Incident::declare(&*store, scope, Timestamp::now(), &reason)?;
        let ended = if end_sessions {
            Some(sessions.end_incident(incident.id)?)
        } else {
            None
        };
        Ok::<_, AuthError>((incident, ended))
    })
    .await;
    match declared {
        Ok((incident, ended)) => {
            log(&format!("incident {} declared", incident.id.0));
            let mut body = json!({ "incident": incident.id.0 });
            if let Some(n) = ended {
                body["sessions_ended"] = json!(n);
            }
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(e) => auth_error(e),
    }
}

pub(crate) async fn find_incident<S: CustomerStores>(
    store: &Arc<S>,
    id: i64,
) -> Result<Option<Incident>, AuthError> {
    let store = Arc::clone(store);
    blocking(move || Ok(store.incidents()?.into_iter().find(|i| i.id.0 == id))).await
}

pub(crate) fn start_campaign<S: CustomerStores, V: VaultStore + 'static>(
    app: &App<S, V>,
    incident: Incident,
) -> CampaignTask {
    let notifier = app.mailer.notifier(Arc::clone(&app.profiles));
    let (store, profiles, map) = (
        Arc::clone(&app.store),
        Arc::clone(&app.profiles),
        Arc::clone(&app.data_map),
    );
    let scope = incident.clone();
    let options = move || {
        CampaignOptions::new()
            .exposure(move |account| exposure_text(&map, &*store, &*profiles, &scope, account).ok())
    };
    spawn_campaign(
        Arc::clone(&app.store),
        Arc::clone(&app.links),
        incident,
        notifier,
        options,
    )
}

pub(crate) async fn run_campaign<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    _: Admin,
    UrlPath(id): UrlPath<i64>,
) -> Response {
    let incident = match find_incident(&app.store, id).await {
        Ok(Some(i)) => i,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no_such_incident"),
        Err(e) => return auth_error(e),
    };
    let mut campaigns = app.campaigns.lock().await;
    if !matches!(campaigns.get(&id), Some(CampaignRun::Running(_))) {
        let profiles = Arc::clone(&app.profiles);
        if let Err(e) = blocking(move || profiles.set_campaign(id, false, 0, 0)).await {
            return internal("record campaign", &e);
        }
        campaigns.insert(id, CampaignRun::Running(start_campaign(&app, incident)));
        log(&format!("campaign of incident {id} started"));
    }
    (StatusCode::ACCEPTED, Json(json!({ "incident": id }))).into_response()
}

/// Turns a finished task into its end state (and records a finished campaign).
pub(crate) async fn settle(profiles: &Arc<dyn Profiles>, id: i64, run: CampaignRun) -> CampaignRun {
    let CampaignRun::Running(task) = run else {
        return run;
    };
    if !task.is_finished() {
        return CampaignRun::Running(task);
    }
    let last = task.progress();
    match task.join().await {
        Ok(CampaignEnd::Completed(report)) => {
            let (finished, done, total) = (report.finished, report.sent_total, report.affected);
            let profiles = Arc::clone(profiles);
            let _ = blocking(move || profiles.set_campaign(id, finished, done, total)).await;
            log(&format!(
                "campaign of incident {id}: {} notices in all",
                report.sent_total
            ));
            CampaignRun::Ended {
                done: report.sent_total,
                total: report.affected,
                finished: report.finished,
            }
        }
        Ok(_) => {
            let (done, total) = last.map_or((0, 0), |p| (p.done, p.total));
            CampaignRun::Ended {
                done,
                total,
                finished: false,
            }
        }
        Err(e) => {
            log(&format!("error: campaign of incident {id}: {e}"));
            let (done, total) = last.map_or((0, 0), |p| (p.done, p.total));
            CampaignRun::Ended {
                done,
                total,
                finished: false,
            }
        }
    }
}

pub(crate) async fn campaign_status<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    _: Admin,
    UrlPath(id): UrlPath<i64>,
) -> Response {
    let mut campaigns = app.campaigns.lock().await;
    let run = match campaigns.remove(&id) {
        Some(run) => run,
        // Not run by this process: as recorded by the one that ran it.
        None => {
            let profiles = Arc::clone(&app.profiles);
            match blocking(move || profiles.campaign(id)).await {
                Ok(Some((finished, done, total))) => CampaignRun::Ended {
                    done,
                    total,
                    finished,
                },
                Ok(None) => return error(StatusCode::NOT_FOUND, "no_campaign"),
                Err(e) => return internal("campaign state", &e),
            }
        }
    };
    let run = settle(&app.profiles, id, run).await;
    // Notices that could not go out (no address, refused by the relay), as recorded.
    let undeliverable = match find_incident(&app.store, id).await {
        Ok(Some(incident)) => {
            let store = Arc::clone(&app.store);
            blocking(move || -> Result<u64, AppError> {
                // A read: the lanes as they stand (none yet: nothing to count).
                let lanes = store.lanes(incident.id)?;
                lanes
                    .iter()
                    .map(|l| store.count_undeliverable(l.id).map_err(AppError::from))
                    .sum()
            })
            .await
            .unwrap_or(0)
        }
        _ => 0,
    };
    let body = match &run {
        CampaignRun::Running(task) => {
            let (done, total) = task.progress().map_or((0, 0), |p| (p.done, p.total));
            json!({ "done": done, "total": total, "finished": false, "undeliverable": undeliverable })
        }
        CampaignRun::Ended {
            done,
            total,
            finished,
        } => {
            json!({ "done": done, "total": total, "finished": finished, "undeliverable": undeliverable })
        }
    };
    campaigns.insert(id, run);
    Json(body).into_response()
}
